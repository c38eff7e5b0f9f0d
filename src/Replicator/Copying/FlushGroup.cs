using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Monitoring;

namespace Xtelemdb.Replicator.Copying;

/// <summary>
/// Makes a local replica's copies durable a group at a time, keeping rule 1 for each (a crash
/// leaves every target as it was or complete) at far fewer flushes per file. Each copy hands in its
/// part file, written, stamped with its mtime and checked; whoever holds the turn flushes every part
/// handed in so far with one syncfs (a lone part with its own fsync), renames each over its target,
/// flushes each folder once, and only then lets the copies report. syncfs also flushes whatever else
/// is being written to that file system: a backup disk is written by little else.
/// </summary>
public sealed class FlushGroup
{
    const int Limit = 1024;

    readonly GroupCommit<Staged, bool> groups;
    long flushes;

    public FlushGroup() => groups = new(Limit, FlushAndRenameAsync);

    /// <summary>Flushes made: one per group.</summary>
    public long Flushes => Interlocked.Read(ref flushes);

    /// <summary>Renames the part over the target once it and the rename are on the disk. Not cancelled midway: a flush is short and shared.</summary>
    public Task CommitAsync(FileStream part, string partPath, string target) =>
        groups.CommitAsync(new Staged(part, partPath, target), CancellationToken.None);

    Task FlushAndRenameAsync(IReadOnlyList<GroupCommit<Staged, bool>.Entry> group)
    {
        Interlocked.Increment(ref flushes);
        PipelineMetrics.Flushes.Add(1);
        if (group.Count == 1 || !OperatingSystem.IsLinux())
        {
            foreach (var entry in group)
                entry.Item.Part.Flush(flushToDisk: true);
        }
        else
            Posix.SyncFileSystem(group[0].Item.Part.SafeFileHandle, Path.GetDirectoryName(group[0].Item.Target)!);
        var renamed = new List<GroupCommit<Staged, bool>.Entry>(group.Count);
        foreach (var entry in group)
        {
            try
            {
                File.Move(entry.Item.PartPath, entry.Item.Target, overwrite: true);
                renamed.Add(entry);
            }
            catch (Exception e)
            {
                entry.Fail(e);
            }
        }
        foreach (var folder in renamed.GroupBy(e => Path.GetDirectoryName(e.Item.Target)!))
        {
            try
            {
                Posix.FsyncDirectory(folder.Key);
                foreach (var entry in folder)
                    entry.Succeed(true);
            }
            catch (Exception e)
            {
                foreach (var entry in folder)
                    entry.Fail(e);
            }
        }
        return Task.CompletedTask;
    }

    readonly record struct Staged(FileStream Part, string PartPath, string Target);
}
