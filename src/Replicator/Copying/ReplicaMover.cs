using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.ReplicaSet;

namespace Xtelemdb.Replicator.Copying;

/// <summary>
/// A file moved on its origin (into a day folder: the same name, size and mtime in another folder)
/// costs a rename on the replica, not a copy, as rclone's --track-renames: the replica's copy of the
/// old path is renamed to the new one where it still holds that version and its record a checksum,
/// and the record goes with it. Anything else (the old copy changed or gone, the target taken, the
/// old path back on the origin, a replica that cannot rename safely) gets the copy it would have had.
/// </summary>
sealed class ReplicaMover(XtelemdbSettings settings, ReplicaDirectory replicas, ILogger logger)
{
    /// <summary>
    /// How long a move waits for this process's work on the old path (a copy of it, a fixity
    /// check) before copying instead: a file moved and moved back, whose two requests each hold
    /// the other's path, never wait for each other.
    /// </summary>
    static readonly TimeSpan OldPathWait = TimeSpan.FromSeconds(1);

    long moves;

    /// <summary>Copies renamed to a moved file's new path since start.</summary>
    public long Moves => Interlocked.Read(ref moves);

    /// <param name="held">The target's stat, made with the copier's checks; null: nothing there.</param>
    /// <param name="hold">Takes this process's lock on another path of the replica, as the copier takes the target's.</param>
    /// <param name="copy">The copy the request gets where no rename can stand in for it.</param>
    public async Task<CopyResult> MoveOrCopyAsync(ReplicaNeeded need, string source, IReplicaTarget target, string path, Task<FileVersion?> held,
        Func<string, CancellationToken, Task<IDisposable>> hold, Func<Task<CopyResult>> copy, CancellationToken cancellationToken)
    {
        var from = need.MovedFrom ?? throw new ArgumentException("not a move", nameof(need));
        var oldPath = await target.PathForAsync(need.OriginHost, from, cancellationToken);
        OldCopy old;
        using (var holding = await TryHoldAsync(hold, oldPath, cancellationToken))
        {
            old = holding is null || need.Recopy ? default : await LookAsync(need, source, target, oldPath, held, cancellationToken);
            if (old.Checksum is { } checksum)
            {
                var landed = await target.MoveAsync(oldPath, path, cancellationToken);
                if (landed is { } moved && target.Holds(moved, old.Version))
                {
                    Interlocked.Increment(ref moves);
                    return new CopyResult(CopyOutcome.Moved, old.Version, checksum, old.StatedAt) { MovedFrom = from };
                }
                if (landed is not null)
                    throw new IOException($"{oldPath} was renamed to {path} on replica {need.ReplicaUrl}, which then held {landed}, not {old.Version} "
                        + "(changed on the replica meanwhile); the request is retried and copies it");
                logger.LogInformation("{Old} was not renamed to {Path} on {Replica} (gone or taken meanwhile, or no safe rename there); copied instead",
                    oldPath, path, need.ReplicaUrl);
            }
        }
        var result = await copy();
        // The old path's record claims a copy that is not there: it goes with this one's report.
        return (old.Gone || old.Checksum is not null) && result.Outcome is CopyOutcome.Copied or CopyOutcome.AlreadyCurrent
            && await target.StatAsync(oldPath, cancellationToken) is null
            ? result with { MovedFrom = from }
            : result;
    }

    /// <param name="Checksum">The record's checksum, where the old copy can be renamed.</param>
    /// <param name="Gone">The old path's record holds this version, yet nothing is at the old path on the replica.</param>
    readonly record struct OldCopy(string? Checksum, bool Gone, FileVersion Version, DateTime StatedAt);

    /// <summary>
    /// Whether the old copy may be renamed: the new path holds the version on the origin and the old
    /// path nothing; the replica has nothing at the new path, and at the old one the version its
    /// record names with a checksum.
    /// </summary>
    async Task<OldCopy> LookAsync(ReplicaNeeded need, string source, IReplicaTarget target, string oldPath, Task<FileVersion?> held,
        CancellationToken cancellationToken)
    {
        var version = new FileVersion(need.Mtime, need.Size);
        var statedAt = DateTime.UtcNow;
        // Moved back, or written anew: the old path is the origin's again, and its copy stays where it is.
        if (FileVersion.Of(source) is not { } now || !now.SameAs(version)
            || FileKinds.Of(settings.SourcePath(need.OriginHost, need.MovedFrom!)!) != FileKind.Missing)
            return default;
        // Over a long link, one round trip for both.
        var inside = target.EnsureInsidePrefixAsync(oldPath, cancellationToken);
        var oldStat = target.StatAsync(oldPath, cancellationToken);
        string? checksum;
        try
        {
            checksum = await replicas.MovableChecksumAsync(need.ReplicaId, need.OriginHost, need.MovedFrom!, version, cancellationToken);
            await inside;
        }
        catch (Exception e) when (e is not OperationCanceledException && e is not IOException)
        {
            // A database that cannot answer, or an old path that leads out of the prefix: copied, as without a move.
            logger.LogInformation("{Old} is not renamed to {Path} on {Replica} ({Error}); copied instead", oldPath, need.OriginPath, need.ReplicaUrl, e.Message);
            await Task.WhenAll(Quietly(inside), Quietly(oldStat));
            return default;
        }
        var old = await oldStat;
        if (checksum is null)
            return default;
        if (old is null)
            return new OldCopy(null, Gone: true, version, statedAt);
        if (await held is not null || !target.Holds(old.Value, version))
            return default;
        // The same name, size and mtime is not yet the same file (cp -p, tar x, a stamped acquisition
        // time): the new path's bytes must hash to the old copy's record, or it is copied.
        if (!await FileChecksum.HoldsAsync(source, version, checksum, cancellationToken))
            return default;
        return new OldCopy(checksum, Gone: false, version, statedAt);
    }

    static async Task Quietly(Task task)
    {
        try
        {
            await task;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
        }
    }

    static async Task<IDisposable?> TryHoldAsync(Func<string, CancellationToken, Task<IDisposable>> hold, string path, CancellationToken cancellationToken)
    {
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        wait.CancelAfter(OldPathWait);
        try
        {
            return await hold(path, wait.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }
}
