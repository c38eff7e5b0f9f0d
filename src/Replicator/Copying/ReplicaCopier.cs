using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Monitoring;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.ReplicaSet;

namespace Xtelemdb.Replicator.Copying;

/// <summary>
/// Brings one replica's copy of one origin file up to date: a quick check first (duplicates cost
/// a stat, not a copy), then at most a few attempts at a stable copy.
/// </summary>
public sealed class ReplicaCopier(XtelemdbSettings settings, ReplicaDirectory replicas, ReplicaTargetFactory targets, ILogger<ReplicaCopier> logger)
{
    const int Attempts = 3;
    readonly KeyedLock inFlight = new();
    long copies, discarded;

    /// <summary>Files copied since start (quick checks that found the target current are not copies).</summary>
    public long Copies => Interlocked.Read(ref copies);

    /// <summary>Copies thrown away because the source changed while they were made.</summary>
    public long Discarded => Interlocked.Read(ref discarded);

    /// <summary>Called with (target, bytes so far) during a copy; lets tests act in the middle of one.</summary>
    public Action<string, long>? Progress { get; set; }

    public async Task<(CopyResult Result, string Target)> CopyAsync(ReplicaNeeded need, CancellationToken cancellationToken)
    {
        if (need.OriginHost != settings.Host)
            throw new UnknownReplicaException($"this replicator reads the files of host {settings.Host}, not of {need.OriginHost}");
        var replica = replicas.Find(need.ReplicaUrl)
            ?? throw new UnknownReplicaException($"replica {need.ReplicaUrl} is not in {settings.Source} nor registered in the database");
        var target = targets.For(replica);
        var path = await target.PathForAsync(need.OriginHost, need.OriginPath, cancellationToken);

        using var _ = await inFlight.AcquireAsync(replica.Url + "\n" + path, cancellationToken);
        await target.EnsureInsidePrefixAsync(path, cancellationToken);
        var started = Stopwatch.GetTimestamp();
        var replicaTag = PipelineMetrics.Replica(replica.Url);
        CopyResult result;
        try
        {
            result = await CopyWithinTimeoutAsync(need, target, path, replica.Url, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            PipelineMetrics.CopyFailures.Add(1, replicaTag, new("reason", FailureReason(e)));
            throw;
        }
        Count(result, replicaTag, started);
        return (result, path);
    }

    /// <summary>A copy longer than copy_timeout fails rather than outlive RabbitMQ's consumer_timeout.</summary>
    async Task<CopyResult> CopyWithinTimeoutAsync(ReplicaNeeded need, IReplicaTarget target, string path, string replicaUrl, CancellationToken cancellationToken)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(settings.Replicator.CopyTimeout);
        try
        {
            return await CopyStableAsync(need.OriginPath, target, path, replicaUrl, need.Recopy, bounded.Token);
        }
        catch (OperationCanceledException) when (bounded.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new CopyTimeoutException($"copying {need.OriginPath} to {path} on replica {replicaUrl} did not finish within "
                + $"[replicator] copy_timeout ({settings.Replicator.CopyTimeout}); raise it together with RabbitMQ's consumer_timeout, then resync");
        }
    }

    static void Count(CopyResult result, KeyValuePair<string, object?> replicaTag, long started)
    {
        switch (result.Outcome)
        {
            case CopyOutcome.Copied:
                PipelineMetrics.Copies.Add(1, replicaTag, new("result", "copied"));
                PipelineMetrics.BytesCopied.Add(result.Version.Size, replicaTag);
                PipelineMetrics.CopyDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, replicaTag);
                break;
            case CopyOutcome.AlreadyCurrent:
                PipelineMetrics.Copies.Add(1, replicaTag, new("result", "current"));
                break;
            case CopyOutcome.SourceChanging:
                PipelineMetrics.CopyFailures.Add(1, replicaTag, new("reason", "changing"));
                break;
        }
    }

    static string FailureReason(Exception e) => e switch
    {
        ReplicaFullException => "full",
        CopyTimeoutException => "timeout",
        Sftp.SshReplicaException => "ssh",
        IOException => "io",
        _ => "other",
    };

    async Task<CopyResult> CopyStableAsync(string source, IReplicaTarget target, string path, string replicaUrl, bool recopy, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var statedAt = DateTime.UtcNow;
            if (FileVersion.Of(source) is not { } version)
                return new CopyResult(CopyOutcome.SourceMissing, default, null, statedAt);
            if (!recopy && await target.StatAsync(path, cancellationToken) is { } held && target.Holds(held, version))
            {
                // The inventory asks only for what it has no record of: a copy made before a crash
                // lost its report. Record it with the checksum of what the replica really holds.
                return new CopyResult(CopyOutcome.AlreadyCurrent, version, await target.ChecksumAsync(path, cancellationToken), statedAt);
            }
            try
            {
                var copy = await target.CopyAsync(source, path, Progress is { } p ? bytes => p(path, bytes) : null, cancellationToken);
                if (copy is { } done)
                {
                    Interlocked.Increment(ref copies);
                    return new CopyResult(CopyOutcome.Copied, done.Version, done.Checksum, DateTime.UtcNow);
                }
                Interlocked.Increment(ref discarded);
            }
            catch (FileNotFoundException)
            {
                return new CopyResult(CopyOutcome.SourceMissing, default, null, statedAt);
            }
            catch (IOException e) when (target is LocalReplicaTarget && ReplicaFullException.IsFull(e, Path.GetDirectoryName(path)!, version.Size))
            {
                throw new ReplicaFullException($"replica {replicaUrl} is full: {path} needs {version.Size} bytes: {e.Message}");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Without the inner exception, for the same reason as ReplicaFullException.
                throw new IOException($"copying {source} to {path} on replica {replicaUrl} failed: {e.GetType().Name}: {e.Message}");
            }
            logger.LogDebug("{Source} changed while it was copied (attempt {Attempt})", source, attempt);
            if (attempt == Attempts)
                return new CopyResult(CopyOutcome.SourceChanging, default, null, statedAt);
        }
    }
}
