using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Monitoring;

namespace Xtelemdb.Replicator.Copying;

/// <summary>
/// Makes a local replica's copies durable a group at a time, keeping rule 1 for each (a crash
/// leaves every target as it was or complete) at far fewer flushes per file. Each copy hands in its
/// part file, written, stamped with its mtime and checked; whoever holds the turn flushes every part
/// handed in so far, renames each over its target, flushes each folder once, and only then lets the
/// copies report. Parts on one ext4, XFS or Btrfs file system are flushed with one syncfs, called on
/// the part opened first (syncfs reports the write errors since its file was opened, so none of the
/// group's is missed); a lone part, or one on any other file system (FUSE, NFS), gets its own fsync.
/// syncfs also flushes whatever else is being written to that file system: a backup disk is written
/// by little else.
/// </summary>
public sealed class FlushGroup
{
    const int Limit = 1024;

    readonly GroupCommit<Staged, bool> groups;
    long flushes;

    public FlushGroup() => groups = new(Limit, FlushAndRenameAsync);

    /// <summary>Flushes made (a syncfs or an fsync each): far fewer than copies where copies come together.</summary>
    public long Flushes => Interlocked.Read(ref flushes);

    /// <summary>Renames the part over the target once it and the rename are on the disk. Not cancelled midway: a flush is short and shared.</summary>
    /// <param name="opened">When the part was opened (Stopwatch timestamp): syncfs is called on the group's oldest.</param>
    public Task CommitAsync(FileStream part, string partPath, string target, long opened) =>
        groups.CommitAsync(new Staged(part, partPath, target, opened), CancellationToken.None);

    Task FlushAndRenameAsync(IReadOnlyList<GroupCommit<Staged, bool>.Entry> group)
    {
        var flushed = new List<GroupCommit<Staged, bool>.Entry>(group.Count);
        foreach (var fileSystem in group.GroupBy(e => Posix.FileSystemOf(e.Item.Part.SafeFileHandle)))
        {
            try
            {
                if (fileSystem.Key is { } kind && fileSystem.Count() > 1 && Posix.SyncsWholeFileSystem(kind.Type))
                {
                    var oldest = fileSystem.MinBy(e => e.Item.Opened)!.Item;
                    Flushed();
                    Posix.SyncFileSystem(oldest.Part.SafeFileHandle, Path.GetDirectoryName(oldest.Target)!);
                }
                else
                {
                    foreach (var entry in fileSystem)
                    {
                        Flushed();
                        entry.Item.Part.Flush(flushToDisk: true);
                    }
                }
                flushed.AddRange(fileSystem);
            }
            catch (Exception e)
            {
                // Not renamed: the copies fail, their owners remove the parts, and the requests are retried.
                foreach (var entry in fileSystem)
                    entry.Fail(e);
            }
        }
        var renamed = new List<GroupCommit<Staged, bool>.Entry>(flushed.Count);
        foreach (var entry in flushed)
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
                Flushed();
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

    void Flushed()
    {
        Interlocked.Increment(ref flushes);
        PipelineMetrics.Flushes.Add(1);
    }

    readonly record struct Staged(FileStream Part, string PartPath, string Target, long Opened);
}
