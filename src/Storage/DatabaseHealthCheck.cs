using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace Xtelemdb.Storage;

/// <summary>/health: the inventory database answers a query.</summary>
public sealed class DatabaseHealthCheck(NpgsqlDataSource dataSource) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var command = dataSource.CreateCommand("select 1");
            await command.ExecuteScalarAsync(cancellationToken);
            return HealthCheckResult.Healthy($"{Describe()} answers");
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            return HealthCheckResult.Unhealthy($"{Describe()}: {e.Message}");
        }
    }

    string Describe()
    {
        var builder = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString);
        return $"database {builder.Database} on {builder.Host}:{builder.Port}";
    }
}
