using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace Xtelemdb.Storage;

/// <summary>
/// /health: the inventory database answers a query, and which server answers it: with a primary and
/// its standby in the connection string, the operator sees the services follow a promotion.
/// </summary>
public sealed class DatabaseHealthCheck(NpgsqlDataSource dataSource) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            await using var command = new NpgsqlCommand("select pg_is_in_recovery()", connection);
            var standby = (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
            var server = $"{connection.Host}:{connection.Port}";
            var data = new Dictionary<string, object> { ["server"] = server, ["role"] = standby ? "standby" : "primary" };
            var described = $"database {connection.Database} on {server}";
            return standby
                ? HealthCheckResult.Unhealthy($"{described} is a standby (in recovery), where nothing can be written", data: data)
                : HealthCheckResult.Healthy($"{described}, the primary, answers", data);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            return HealthCheckResult.Unhealthy($"{Describe()}: {e.Message}");
        }
    }

    /// <summary>"database xtelem on h:5432", or each host of several ("on pg1:5432,pg2:5433").</summary>
    string Describe()
    {
        var builder = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString);
        var servers = builder.Host!.Split(',').Select(h => h.Trim()).Select(h => h.Contains(':') && !h.EndsWith(']') ? h : $"{h}:{builder.Port}");
        return $"database {builder.Database} on {string.Join(",", servers)}";
    }
}
