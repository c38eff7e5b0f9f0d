using MassTransit;
using Xtelemdb.Hosting;
using Xtelemdb.Replicator.Copying;
using Xtelemdb.Replicator.Sftp;
using Xtelemdb.Storage;

namespace Xtelemdb.Cli.Operations;

/// <summary>One thing wrong with a replica.</summary>
public sealed record ReplicaProblem(string Path, string Problem);

/// <param name="Skipped">Entries the watchers found among the files this replica selects and do not back up (a FIFO, a name not UTF-8…).</param>
/// <param name="ChecksumsRecorded">Copies recorded without a checksum (imported) whose checksum was read and recorded.</param>
/// <param name="BacklogDrift">How far the backlog the database keeps (what sync and resync ask for) was from the files and copies.</param>
/// <param name="BacklogRebuilt">With --fix, that backlog was computed afresh.</param>
public sealed record VerifyReport(string Replica, long Checked, long ChecksumsVerified, long Missing, long Different, long Unrecorded,
    long FixesRequested, IReadOnlyList<ReplicaProblem> Problems, long Skipped = 0, long ChecksumsRecorded = 0,
    BacklogDrift? BacklogDrift = null, bool BacklogRebuilt = false, long Refused = 0)
{
    /// <summary>A file refused by the database is data not backed up: a failure, where a FIFO is only listed.</summary>
    public bool Ok => Missing == 0 && Different == 0 && Unrecorded == 0 && Refused == 0 && BacklogDrift?.None != false;
}

/// <summary>
/// Compares a replica with the database: every recorded copy exists with its recorded size and
/// mtime (and, asked to, hashes to its checksum), and every file under the prefix is recorded.
/// Asked for checksums, it records the checksum of a copy that has none (an imported one) and
/// holds its recorded version, so that purgeable counts it from then on.
/// Streams both sides, so a replica of a million files takes bounded memory.
/// </summary>
public static class ReplicaVerifier
{
    const int BatchSize = 1000, ProblemsListed = 1000;
    static readonly TimeSpan LeftoverAge = TimeSpan.FromDays(1);

    public static async Task<VerifyReport> RunAsync(OperatorSession session, ReplicaRecord replica, IReplicaTarget target, bool checksums, bool fix,
        Action<string> progress, CancellationToken cancellationToken)
    {
        long checkedCount = 0, verified = 0, missing = 0, different = 0, unrecorded = 0, fixes = 0, recorded = 0;
        var problems = new List<ReplicaProblem>();
        var toFix = new List<(string Host, string Path)>();
        var toRecord = new List<RecordedCopy>();

        void Report(string path, string problem)
        {
            if (problems.Count < ProblemsListed)
                problems.Add(new ReplicaProblem(path, problem));
        }

        async Task FixAsync()
        {
            if (toFix.Count == 0)
                return;
            var needs = await session.Store.NeedsForCopiesAsync(replica.Id, toFix, cancellationToken);
            await session.ReplicaNeeds.SendAsync(session.Bus, needs.Select(n => n with { Recopy = true }), cancellationToken);
            fixes += needs.Count;
            toFix.Clear();
        }

        async Task RecordChecksumsAsync()
        {
            if (toRecord.Count == 0)
                return;
            recorded += await session.Purgeable.RecordChecksumsAsync(replica.Id, toRecord, cancellationToken);
            toRecord.Clear();
        }

        await foreach (var copy in session.Store.RecordedCopiesAsync(replica.Id, cancellationToken))
        {
            checkedCount++;
            var (problem, firstChecksum) = await CheckAsync(target, copy, checksums, cancellationToken);
            if (problem is null && checksums && copy.Checksum is not null)
                verified++;
            if (firstChecksum is not null)
                toRecord.Add(copy with { Checksum = firstChecksum });
            if (toRecord.Count >= BatchSize)
                await RecordChecksumsAsync();
            if (problem is { } found)
            {
                if (found.Missing) missing++; else different++;
                // Bytes other than recorded, at the recorded size and mtime: damage, which nothing may count (purgeable) until copied anew.
                if (found.Damaged)
                    await session.Fixity.MarkDamagedAsync(replica.Id, copy, DateTime.UtcNow, cancellationToken);
                Report(copy.ReplicaPath, found.Text);
                if (fix)
                    toFix.Add((copy.OriginHost, copy.OriginPath));
                if (toFix.Count >= BatchSize)
                    await FixAsync();
            }
            if (checkedCount % 10_000 == 0)
                progress($"{checkedCount:N0} recorded copies checked, {missing + different:N0} wrong");
        }
        await FixAsync();
        await RecordChecksumsAsync();

        var batch = new List<string>(BatchSize);
        async Task LookUpAsync()
        {
            var recorded = await session.Store.RecordedPathsAsync(replica.Id, batch, cancellationToken);
            foreach (var path in batch.Where(p => !recorded.Contains(p)))
            {
                unrecorded++;
                Report(path, "unrecorded: no record says a copy is here");
            }
            batch.Clear();
            progress($"{checkedCount:N0} recorded copies checked; looking for unrecorded files: {unrecorded:N0} so far");
        }
        var folders = new Stack<string>([await target.PrefixAsync(cancellationToken)]);
        while (folders.TryPop(out var folder))
        {
            await foreach (var entry in target.ListAsync(folder, cancellationToken))
            {
                if (entry.IsFolder && !entry.IsLink)
                    folders.Push(entry.Path);
                else if (!entry.IsFolder && !entry.IsLink && entry.Path.EndsWith(SftpReplicaTarget.AsideSuffix, StringComparison.Ordinal))
                {
                    // An old copy moved aside while a server without posix-rename replaced it: with the replicator
                    // killed between the two renames, it may be the only copy left of that file.
                    Report(entry.Path, $"an old copy ({entry.Version.Size:N0} bytes) moved aside by a replicator stopped mid-replacement: "
                        + "if no file stands under its name (the part before .HOST.ID.N.xtelemdb-old, without the leading dot), rename it back; otherwise delete it");
                }
                else if (!entry.IsFolder && !entry.IsLink && BackupImport.IsPart(entry.Path))
                {
                    // A part file is being written, or was left by a replicator killed mid-copy; nobody writes one for a day.
                    if (entry.Version.Mtime < DateTime.UtcNow - LeftoverAge)
                        Report(entry.Path, $"leftover part file ({entry.Version.Size:N0} bytes) of a replicator stopped mid-copy: safe to delete");
                }
                else if (!entry.IsFolder && !entry.IsLink && Path.GetFileName(entry.Path) != ReplicaMarker.FileName)
                    batch.Add(entry.Path);
                if (batch.Count == BatchSize)
                    await LookUpAsync();
            }
        }
        await LookUpAsync();

        // Nothing is skipped in silence: what the watchers saw and cannot back up is listed with the replica's files.
        var skipped = await session.Store.SkippedForAsync(replica.Id, cancellationToken);
        foreach (var entry in skipped)
            Report($"{entry.OriginHost}:{entry.Path}", $"not backed up: {entry.Reason} (seen by {entry.OriginHost}'s watcher since {entry.FirstSeen:yyyy-MM-dd HH:mm}Z)");

        // sync, resync and replica_list trust the backlog the database keeps: check it against the files and copies themselves.
        progress("the database's backlog of this replica against its files and copies");
        var drift = await session.Store.BacklogDriftAsync(replica.Id, cancellationToken);
        var rebuilt = false;
        if (!drift.None)
        {
            if (fix)
            {
                await session.Store.RebuildBacklogAsync(replica.Id, cancellationToken);
                rebuilt = true;
            }
            Report(replica.Name, $"the database's backlog of this replica differs from its files and copies: {drift.Lacking:N0} files behind it lacked, "
                + $"{drift.Wrong:N0} it held wrongly{(drift.CountsOff ? ", its counts off" : "")}; "
                + (rebuilt ? "computed afresh" : "'xtelemdb verify --fix' computes it afresh"));
        }
        var refused = skipped.Count(s => s.Reason.StartsWith(FilesRefused.Reason, StringComparison.Ordinal));
        return new VerifyReport(replica.Name, checkedCount, verified, missing, different, unrecorded, fixes, problems, skipped.Count, recorded, drift, rebuilt, refused);
    }

    /// <returns>What is wrong with the copy, if anything; and, for a copy recorded without a checksum, the one it holds.</returns>
    static async Task<((bool Missing, string Text, bool Damaged)? Problem, string? FirstChecksum)> CheckAsync(IReplicaTarget target, RecordedCopy copy, bool checksums,
        CancellationToken cancellationToken)
    {
        if (await target.StatAsync(copy.ReplicaPath, cancellationToken) is not { } held)
            return ((true, "missing: recorded but not on the replica", false), null);
        var recordedVersion = new FileVersion(copy.Mtime, copy.Size);
        if (!target.Holds(held, recordedVersion))
            return ((false, $"different: recorded {recordedVersion}, found {held}", false), null);
        if (!checksums)
            return (null, null);
        var actual = await target.ChecksumAsync(copy.ReplicaPath, cancellationToken);
        if (copy.Checksum is null)
        {
            // Only bytes that stayed the recorded version while they were read say what that version holds.
            var after = await target.StatAsync(copy.ReplicaPath, cancellationToken);
            return (null, after == held ? actual : null);
        }
        return actual == copy.Checksum ? (null, null) : ((false, $"different: checksum recorded {copy.Checksum}, found {actual}", true), null);
    }
}
