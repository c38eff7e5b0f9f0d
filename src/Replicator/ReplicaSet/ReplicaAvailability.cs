using System.Collections.Concurrent;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Xtelemdb.Hosting.Monitoring;

namespace Xtelemdb.Replicator.ReplicaSet;

/// <summary>
/// The replicas this replicator found without their marker at the last copy it tried, and those
/// whose copies it cannot flush to their disk; /health lists both, and /metrics the former (xtelemdb_replica_available).
/// </summary>
public sealed class ReplicaAvailability : IHealthCheck
{
    readonly ConcurrentDictionary<string, string> unavailable = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, string> unflushed = new(StringComparer.Ordinal);

    public void Flushed(string replica, string? unflushedWhy)
    {
        if (unflushedWhy is null)
            unflushed.TryRemove(replica, out _);
        else
            unflushed[replica] = unflushedWhy;
    }

    string NotFlushed => unflushed.IsEmpty ? "" : "; copies not flushed: " + string.Join("; ", unflushed.Select(u => $"{u.Key}: {u.Value}"));

    public void Available(string replica)
    {
        unavailable.TryRemove(replica, out _);
        PipelineMetrics.ReplicaAvailable[replica] = true;
    }

    /// <remarks>The gauge stays 0 until a copy finds the marker again: after the disk is mounted, the sync that follows.</remarks>
    public void Lost(string replica, string why)
    {
        unavailable[replica] = why;
        PipelineMetrics.ReplicaAvailable[replica] = false;
    }

    /// <summary>Degraded, not unhealthy: the process works, and a hand-carried disk may be away for weeks.</summary>
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(unavailable.IsEmpty
            ? HealthCheckResult.Healthy("every replica this replicator writes has its marker" + NotFlushed)
            : HealthCheckResult.Degraded("unavailable: " + string.Join("; ", unavailable.Select(u => $"{u.Key}: {u.Value}")) + NotFlushed));
}
