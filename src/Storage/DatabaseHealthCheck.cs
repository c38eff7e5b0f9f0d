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
            await using var command = new NpgsqlCommand(StateQuery, connection);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            var (standby, synchronousStandbys, streaming) = (reader.GetBoolean(0), reader.GetString(1), reader.GetFieldValue<string[]>(2));
            var server = $"{connection.Host}:{connection.Port}";
            var data = new Dictionary<string, object> { ["server"] = server, ["role"] = standby ? "standby" : "primary" };
            var described = $"database {connection.Database} on {server}";
            if (standby)
                return HealthCheckResult.Unhealthy($"{described} is a standby (in recovery), where nothing can be written", data: data);
            if (synchronousStandbys.Length > 0 && !SynchronousStandbys.Parse(synchronousStandbys).AreConnected(streaming))
                return HealthCheckResult.Unhealthy($"{described}, the primary, waits for a synchronous standby (synchronous_standby_names = '{synchronousStandbys}') "
                    + $"that is not connected (streaming: {(streaming.Length == 0 ? "none" : string.Join(", ", streaming))}): every write waits until it is, or the setting is emptied", data: data);
            return HealthCheckResult.Healthy($"{described}, the primary, answers", data);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            return HealthCheckResult.Unhealthy($"{Describe()}: {e.Message}");
        }
    }

    /// <summary>
    /// Whether the server is a standby, and whether its commits wait for a standby that is not there
    /// (its walsenders' names are visible to any user, their state not): synchronous replication
    /// with its standby down stops every write, while reads such as this one still answer.
    /// </summary>
    const string StateQuery = """
        select pg_is_in_recovery(),
               case when current_setting('synchronous_commit') in ('off', 'local') then '' else current_setting('synchronous_standby_names') end,
               array(select coalesce(application_name, '') from pg_stat_replication)
        """;

    /// <summary>"database xtelem on h:5432", or each host of several ("on pg1:5432,pg2:5433").</summary>
    string Describe()
    {
        var builder = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString);
        var servers = builder.Host!.Split(',').Select(h => h.Trim()).Select(h => h.Contains(':') && !h.EndsWith(']') ? h : $"{h}:{builder.Port}");
        return $"database {builder.Database} on {string.Join(",", servers)}";
    }
}
