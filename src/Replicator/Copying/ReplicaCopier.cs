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
public sealed class ReplicaCopier(XtelemdbSettings settings, ReplicaDirectory replicas, ReplicaTargetFactory targets,
    ReplicaAvailability availability, ILogger<ReplicaCopier> logger)
{
    const int Attempts = 3;
    readonly KeyedLock inFlight = new();
    readonly ReplicaMover mover = new(settings, replicas, logger);
    long copies, discarded;

    /// <summary>Files copied since start (quick checks that found the target current are not copies).</summary>
    public long Copies => Interlocked.Read(ref copies);

    /// <summary>Copies thrown away because the source changed while they were made.</summary>
    public long Discarded => Interlocked.Read(ref discarded);

    /// <summary>Files moved on their origin whose copy was renamed rather than copied again, since start.</summary>
    public long Moves => mover.Moves;

    /// <summary>Keeps this process's copies off one target while the fixity check reads or repairs it.</summary>
    public Task<IDisposable> HoldAsync(string replicaName, string path, CancellationToken cancellationToken) =>
        inFlight.AcquireAsync(replicaName + "\n" + path, cancellationToken);

    /// <summary>Called with (target, bytes so far) during a copy; lets tests act in the middle of one.</summary>
    public Action<string, long>? Progress { get; set; }

    /// <param name="spent">How long the delivery has been held already (earlier attempts): it counts against copy_timeout.</param>
    public async Task<(CopyResult Result, string Target)> CopyAsync(ReplicaNeeded need, CancellationToken cancellationToken, TimeSpan spent = default)
    {
        var source = settings.SourcePath(need.OriginHost, need.OriginPath)
            ?? throw new UnknownReplicaException($"this replicator on {settings.Host} cannot read the files of host {need.OriginHost}: "
                + $"[origins.\"{need.OriginHost}\"] mount in {settings.Source} names where they are mounted");
        var replica = replicas.Find(need.ReplicaId);
        if (replica is null || !replica.Selection.Selects(need.OriginHost, need.OriginPath))
        {
            // The request may be newer than what this replicator last read of the replica set: read it again before refusing.
            await RefreshReplicaSetAsync(cancellationToken);
            replica = replicas.Find(need.ReplicaId)
                ?? throw new UnknownReplicaException($"replica {need.ReplicaUrl} (id {need.ReplicaId}) is not one this replicator on {settings.Host} writes: "
                    + "a local replica is written only by its own host's replicator");
            // Dropped only on the database's word, which decided the backlog (a database that cannot answer: retried).
            if (!replica.Selection.Selects(need.OriginHost, need.OriginPath)
                && !await replicas.SelectsAsync(need.ReplicaId, need.OriginHost, need.OriginPath, cancellationToken))
            {
                PipelineMetrics.Copies.Add(1, PipelineMetrics.Replica(replica.Name), new("result", "not selected"));
                return (new CopyResult(CopyOutcome.NotSelected, default, null, DateTime.UtcNow), "");
            }
        }
        var replicaTag = PipelineMetrics.Replica(replica.Name);
        var target = targets.For(replica);
        var started = Stopwatch.GetTimestamp();
        CopyResult result;
        string path;
        try
        {
            // Inside: over SFTP the path is the first thing that needs the server, and a server not reached is a failure to count.
            path = await target.PathForAsync(need.OriginHost, need.OriginPath, cancellationToken);
            result = await CopyWithinTimeoutAsync(need, source, replica, target, path, spent, cancellationToken);
            if (result.Outcome == CopyOutcome.SourceMissing)
                SourceProbe.EnsureGone(need.OriginHost, source, settings.Origins.GetValueOrDefault(need.OriginHost));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            PipelineMetrics.CopyFailures.Add(1, replicaTag, new("reason", FailureReason(e)));
            throw;
        }
        Count(result, replicaTag, started);
        if (result.Outcome == CopyOutcome.Copied)
            await ReportFlushAsync(need.ReplicaId, replica.Name, target);
        return (result, path);
    }

    /// <summary>Says in /health and replica_list whether copies reach the replica's disk before they are recorded.</summary>
    async Task ReportFlushAsync(int replicaId, string replicaName, IReplicaTarget target)
    {
        availability.Flushed(replicaName, target.Unflushed);
        try
        {
            await replicas.RecordUnflushedAsync(replicaId, target.Unflushed, CancellationToken.None);
        }
        catch (Exception e)
        {
            // The copy is made and is reported below; the note waits for the next copy.
            logger.LogWarning("Cannot record whether replica {Replica} is flushed ({Error})", replicaName, e.Message);
        }
    }

    /// <summary>A database that cannot be read leaves what this replicator knows; no request is dropped on it.</summary>
    async Task RefreshReplicaSetAsync(CancellationToken cancellationToken)
    {
        try
        {
            await replicas.RefreshAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Cannot read the replica set again ({Error})", e.Message);
        }
    }

    /// <summary>Nothing is written to a replica whose marker is missing: a disk not mounted leaves a bare mount point.</summary>
    async Task EnsureAvailableAsync(ReplicaSettings replica, IReplicaTarget target, CancellationToken cancellationToken)
    {
        if (await target.HasMarkerAsync(cancellationToken))
        {
            availability.Available(replica.Name);
            return;
        }
        var marker = $"{await target.PrefixAsync(cancellationToken)}/{ReplicaMarker.FileName}";
        availability.Lost(replica.Name, $"its marker {marker} is missing");
        var addReplica = replica.Ssh is null
            ? $"'xtelemdb add_replica prefix={replica.Url}' once on {replica.Host}"
            : $"'xtelemdb add_replica prefix={replica.Url}' once on any host";
        throw new ReplicaUnavailableException($"replica {replica.Name} is not available: its marker {marker} is missing "
            + $"(a backup disk not mounted?), so nothing was written. Mount it, or, for a new replica, run {addReplica}; then 'xtelemdb sync'");
    }

    /// <summary>
    /// A delivery that outlasts copy_timeout fails rather than outlive RabbitMQ's consumer_timeout:
    /// the time since it was received (earlier attempts and their retry delays) counts, and so does
    /// the wait for another copy of the same file, since the delivery is unacknowledged meanwhile.
    /// </summary>
    async Task<CopyResult> CopyWithinTimeoutAsync(ReplicaNeeded need, string source, ReplicaSettings replica, IReplicaTarget target, string path,
        TimeSpan spent, CancellationToken cancellationToken)
    {
        var replicaUrl = replica.Name;
        var budget = settings.Replicator.CopyTimeout - spent;
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(budget > TimeSpan.Zero ? budget : TimeSpan.Zero);
        var waiting = true;
        try
        {
            using var _ = await inFlight.AcquireAsync(replicaUrl + "\n" + path, bounded.Token);
            waiting = false;
            // Three reads at once (over a long link, one round trip for all): the marker, the way to the target, and the target.
            var available = EnsureAvailableAsync(replica, target, bounded.Token);
            var inside = target.EnsureInsidePrefixAsync(path, bounded.Token);
            var held = need.Recopy ? Task.FromResult<FileVersion?>(null) : target.StatAsync(path, bounded.Token);
            await available;
            await inside;
            if (need.MovedFrom is not null)
                return await mover.MoveOrCopyAsync(need, source, target, path, held, (old, token) => inFlight.AcquireAsync(replicaUrl + "\n" + old, token),
                    () => CopyStableAsync(need, source, target, path, replicaUrl, held, bounded.Token), bounded.Token);
            var result = await CopyStableAsync(need, source, target, path, replicaUrl, held, bounded.Token);
            if (result.Outcome != CopyOutcome.SourceMissing)
                return result;
            // Gone for certain first: an unmounted origin must fail, not turn into copies found.
            SourceProbe.EnsureGone(need.OriginHost, source, settings.Origins.GetValueOrDefault(need.OriginHost));
            return await UnreportedCopyAsync(need, target, path, bounded.Token) ?? result;
        }
        catch (OperationCanceledException) when (bounded.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new CopyTimeoutException(waiting
                ? $"copying {need.OriginPath} to {path} on replica {replicaUrl} waited past [replicator] copy_timeout ({settings.Replicator.CopyTimeout}) "
                    + "for another copy of the same file; a sync asks again"
                : $"copying {need.OriginPath} to {path} on replica {replicaUrl} did not finish within "
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
            case CopyOutcome.Moved:
                PipelineMetrics.Copies.Add(1, replicaTag, new("result", "moved"));
                break;
            case CopyOutcome.SourceChanging:
                PipelineMetrics.CopyFailures.Add(1, replicaTag, new("reason", "changing"));
                break;
        }
    }

    static string FailureReason(Exception e) => e switch
    {
        ReplicaFullException => "full",
        ReplicaUnavailableException => "unavailable",
        SourceUnavailableException => "source",
        NotRegularFileException => "not a file",
        CopyTimeoutException => "timeout",
        Sftp.SshReplicaException => "ssh",
        IOException => "io",
        _ => "other",
    };

    /// <summary>
    /// The record of the copy the target holds, where it is that copy (same size and mtime): what an
    /// append starts from. The copy this process made last stands in where the record lags behind.
    /// </summary>
    async Task<HeldCopy?> RecordedAsync(ReplicaNeeded need, IReplicaTarget target, string path, FileVersion held, CancellationToken cancellationToken)
    {
        try
        {
            if (await replicas.RecordedCopyAsync(need.ReplicaId, need.OriginHost, need.OriginPath, cancellationToken) is { Checksum: { } checksum } recorded
                && target.Holds(held, new FileVersion(recorded.Mtime, recorded.Size)))
                return new HeldCopy(held, checksum);
            return target.LastCopied(path) is { } last && target.Holds(held, last.Version) ? last with { Version = held } : null;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogDebug("No record of {Path} on {Replica} to append to ({Error}); it is sent whole", need.OriginPath, need.ReplicaUrl, e.Message);
            return null;
        }
    }

    /// <summary>The checksum recorded for this version of the replica's copy; null without one (or a database that cannot answer).</summary>
    async Task<string?> RecordedChecksumAsync(ReplicaNeeded need, IReplicaTarget target, FileVersion version, CancellationToken cancellationToken)
    {
        try
        {
            return await ReadRecordedChecksumAsync(need, target, version, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogDebug("No record of {Path} on {Replica} to compare ({Error})", need.OriginPath, need.ReplicaUrl, e.Message);
            return null;
        }
    }

    /// <summary>The same, a database that cannot answer throwing.</summary>
    async Task<string?> ReadRecordedChecksumAsync(ReplicaNeeded need, IReplicaTarget target, FileVersion version, CancellationToken cancellationToken) =>
        await replicas.RecordedCopyAsync(need.ReplicaId, need.OriginHost, need.OriginPath, cancellationToken) is { Checksum: { } checksum } recorded
            && target.Holds(new FileVersion(recorded.Mtime, recorded.Size), version) ? checksum : null;

    /// <summary>
    /// The source is gone, yet the target may hold the very version asked for: a copy renamed into
    /// place whose report was lost (the broker killed before it confirmed), asked for again after
    /// the file was deleted. Its record then still names the version before, which the target no
    /// longer holds. Recorded as it is where the target is certainly that version: here, its exact
    /// size and mtime; over SFTP (whole-second mtimes), only the copy this process made itself, with
    /// the same bytes. Never for a recopy (the copy is in doubt) or against a recorded checksum of
    /// the same version (damage, which verify reports).
    /// </summary>
    async Task<CopyResult?> UnreportedCopyAsync(ReplicaNeeded need, IReplicaTarget target, string path, CancellationToken cancellationToken)
    {
        // Before the stat: a copy reported by another process meanwhile is the later one.
        var statedAt = DateTime.UtcNow;
        var asked = new FileVersion(need.Mtime, need.Size);
        if (need.Recopy || await target.StatAsync(path, cancellationToken) is not { } held || !target.Holds(held, asked))
            return null;
        var made = target.KeepsMtimes ? null : target.LastCopied(path);
        if (!target.KeepsMtimes && (made is null || !made.Value.Version.SameAs(asked)))
            return null;
        var checksum = await target.ChecksumAsync(path, cancellationToken);
        if (made is { } own && own.Checksum != checksum)
            return null;
        // Here a database that cannot answer records nothing: with the source gone, damage recorded as good would never be found.
        try
        {
            if (await ReadRecordedChecksumAsync(need, target, asked, cancellationToken) is { } recorded && recorded != checksum)
                return null;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogDebug("No record of {Path} on {Replica} to compare ({Error}); the copy found is not recorded", need.OriginPath, need.ReplicaUrl, e.Message);
            return null;
        }
        logger.LogInformation("{Host}:{Path} is gone; {Replica} holds the version asked for, recorded now", need.OriginHost, need.OriginPath, need.ReplicaUrl);
        return new CopyResult(CopyOutcome.AlreadyCurrent, asked, checksum, statedAt);
    }

    /// <param name="firstStat">The target's stat, made alongside the checks before the first attempt.</param>
    async Task<CopyResult> CopyStableAsync(ReplicaNeeded need, string source, IReplicaTarget target, string path, string replicaUrl,
        Task<FileVersion?> firstStat, CancellationToken cancellationToken)
    {
        var recopy = need.Recopy;
        for (var attempt = 1; ; attempt++)
        {
            var statedAt = DateTime.UtcNow;
            if (FileVersion.Of(source) is not { } version)
                return new CopyResult(CopyOutcome.SourceMissing, default, null, statedAt);
            // A FIFO, a device or a socket has no size: looked at before anything opens it.
            if (version.Size == 0 && FileKinds.Of(source) is var kind and not (FileKind.Regular or FileKind.Unknown))
            {
                return kind == FileKind.Missing
                    ? new CopyResult(CopyOutcome.SourceMissing, default, null, statedAt)
                    : throw new NotRegularFileException($"{source} is {FileKinds.Describe(kind)}, not a regular file: not backed up");
            }
            var held = recopy ? null : attempt == 1 ? await firstStat : await target.StatAsync(path, cancellationToken);
            string? mustHashTo = null;
            if (held is { } current && target.Holds(current, version))
            {
                // The inventory asks only for what it has no record of: a copy made before a crash
                // lost its report. Record it with the checksum of what the replica really holds.
                var checksum = await target.ChecksumAsync(path, cancellationToken);
                // A record of this version with other bytes than the copy's is damage (a replayed request
                // must not record rotten bytes as good): copied again, only with the recorded bytes.
                if (await RecordedChecksumAsync(need, target, version, cancellationToken) is { } recorded && recorded != checksum)
                    mustHashTo = recorded;
                else if (target.KeepsMtimes || await FileChecksum.HoldsAsync(source, version, checksum, cancellationToken))
                    return new CopyResult(CopyOutcome.AlreadyCurrent, version, checksum, statedAt);
            }
            try
            {
                var appendTo = held is { } smaller && target.Appends && smaller.Size < version.Size ? await RecordedAsync(need, target, path, smaller, cancellationToken) : null;
                var copy = await target.CopyAsync(source, path, appendTo, Progress is { } p ? bytes => p(path, bytes) : null, cancellationToken, mustHashTo);
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
