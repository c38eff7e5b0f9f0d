using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting.Monitoring;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.ReplicaSet;
using Xtelemdb.Replicator.Sftp;
using Xtelemdb.Storage;

namespace Xtelemdb.Replicator.Fixity;

/// <summary>
/// The rolling fixity check of the replicas this replicator writes: every copy read back and hashed
/// once per fixity_period, spread evenly (each slice takes its share of the copies, those checked
/// longest ago first), at most fixity_rate. What was checked is in the database (checked_at), so a
/// restart carries on where it stopped; a replica written by several replicators is checked by one
/// at a time.
/// </summary>
public sealed class FixityScheduler(ReplicaDirectory replicas, FixityStore store, FixityCheck check, TimeProvider clock,
    ILogger<FixityScheduler> logger) : BackgroundService
{
    readonly ConcurrentDictionary<int, DateTimeOffset> nextSlice = new();
    readonly ConcurrentDictionary<int, BandwidthLimit> rates = new();
    readonly ConcurrentDictionary<string, (TimeSpan, TimeSpan)> standing = new(StringComparer.Ordinal);

    /// <summary>How often a replica's slice is taken: a 144th of its period (10 minutes for 24 hours), from 1 s to 10 minutes.</summary>
    public static TimeSpan Tick(TimeSpan period) =>
        TimeSpan.FromTicks(Math.Clamp(period.Ticks / 144, TimeSpan.FromSeconds(1).Ticks, TimeSpan.FromMinutes(10).Ticks));

    /// <summary>The copies a slice reads so that all of them are read once a period: at least one while there are any.</summary>
    public static int Budget(long copies, TimeSpan tick, TimeSpan period) =>
        copies == 0 ? 0 : (int)Math.Clamp((long)Math.Ceiling((double)copies * tick.Ticks / period.Ticks), 1, 100_000);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // The replica set is read as it is loaded and changed: a replica appears here at the next turn.
        PipelineMetrics.Fixity = standing;
        while (!stoppingToken.IsCancellationRequested)
        {
            foreach (var (id, replica) in replicas.All)
            {
                if (replica.Fixity.Period is not { } period || nextSlice.GetValueOrDefault(id) > clock.GetUtcNow())
                    continue;
                nextSlice[id] = clock.GetUtcNow() + Tick(period);
                try
                {
                    await SliceAsync(id, replica, period, stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    // The copies not checked stay the oldest: the next slice takes them first.
                    logger.LogWarning("Fixity of {Replica}: {Error}; going on at its next slice", replica.Name, e.Message);
                }
            }
            foreach (var name in standing.Keys.Except(replicas.All.Values.Where(r => r.Fixity.Period is not null).Select(r => r.Name)).ToArray())
                standing.TryRemove(name, out _);
            await Task.Delay(TimeSpan.FromSeconds(1), clock, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    async Task SliceAsync(int id, ReplicaSettings replica, TimeSpan period, CancellationToken cancellationToken)
    {
        await using var turn = await store.TryLockAsync(id, cancellationToken);
        if (turn is null)
            return;
        if (!await check.AvailableAsync(replica, cancellationToken))
        {
            logger.LogDebug("Fixity of {Replica}: its marker is missing (not mounted?); not checked now", replica.Name);
            return;
        }
        var now = clock.GetUtcNow().UtcDateTime;
        var copies = await store.StandingAsync(id, cancellationToken);
        standing[replica.Name] = (period, copies.OldestChecked is { } oldest ? now - oldest : TimeSpan.Zero);
        var rate = rates.GetOrAdd(id, _ => new BandwidthLimit(replica.Fixity.Rate, clock));
        var tag = PipelineMetrics.Replica(replica.Name);
        // A counter is exported from its first measurement: zero damage is a figure an alert can rely on.
        PipelineMetrics.FixityDamaged.Add(0, tag);
        foreach (var copy in await store.DueAsync(id, Budget(copies.Copies, Tick(period), period), cancellationToken))
        {
            var result = await check.CheckAsync(id, replica, copy, cancellationToken);
            PipelineMetrics.FixityChecked.Add(1, tag, new("result", result.ToString().ToLowerInvariant()));
            for (var left = copy.Size; left > 0; left -= int.MaxValue)
                await rate.TakeAsync((int)Math.Min(left, int.MaxValue), cancellationToken);
        }
    }
}
