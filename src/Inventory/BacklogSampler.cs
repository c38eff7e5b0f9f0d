using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting.Monitoring;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory;

/// <summary>
/// Reads each replica's backlog, and each (replica, origin host) pair's, for /metrics, from what the
/// database keeps (replica_counts, folded here first: every ingest adds a row of changes). It runs on
/// its own schedule (every 30 s, or less often when it is slow) rather than once per scrape.
/// </summary>
public sealed class BacklogSampler(InventoryStore store, IHostApplicationLifetime lifetime, ILogger<BacklogSampler> logger) : BackgroundService
{
    static readonly TimeSpan Interval = TimeSpan.FromSeconds(30);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // After start-up has registered the replicas of the configuration.
        await Task.Delay(Timeout.Infinite, lifetime.ApplicationStarted).ContinueWith(_ => { }, TaskScheduler.Default);
        while (!stoppingToken.IsCancellationRequested)
        {
            var started = Stopwatch.StartNew();
            try
            {
                await store.CompactCountsAsync(stoppingToken);
                var now = DateTime.UtcNow;
                var replicas = (await store.ReplicaStatusAsync(stoppingToken)).Where(r => r.Enabled).ToArray();
                var pairs = await store.PairStatusAsync(stoppingToken);
                PipelineMetrics.Backlog = replicas
                    .Select(r => new ReplicaBacklog(r.Name, r.FilesBehind, r.BytesBehind, r.OldestBehind is { } oldest ? now - oldest : TimeSpan.Zero))
                    .ToArray();
                // A replica enabled between the two queries gets its pairs at the next count.
                var names = replicas.ToDictionary(r => r.Id, r => r.Name);
                PipelineMetrics.PairBacklog = pairs.Where(p => names.ContainsKey(p.ReplicaId))
                    .Select(p => new ReplicaOriginBacklog(names[p.ReplicaId], p.OriginHost, p.FilesBehind, p.BytesBehind))
                    .ToArray();
                PipelineMetrics.BacklogCounted = DateTimeOffset.UtcNow;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The gauges keep their last values; /health reports the database itself.
                logger.LogWarning("Counting the replicas' backlog failed: {Error}", e.Message);
            }
            // At most a tenth of the time spent counting, however large the inventory grows.
            var wait = TimeSpan.FromTicks(Math.Max(Interval.Ticks, started.Elapsed.Ticks * 10));
            await Task.Delay(wait, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }
}
