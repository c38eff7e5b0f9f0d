using System.Diagnostics;
using Xtelemdb.Replicator.Copying;
using Xtelemdb.Replicator.Sftp;
using Xtelemdb.Storage;

namespace Xtelemdb.Cli.Operations;

/// <summary>What an import enrolled, and what it refused.</summary>
public sealed record ImportReport(long Files, long OriginsAdded, long ReplicasAdded, long Refused, IReadOnlyList<string> RefusedExamples);

/// <summary>
/// The reverse process of the design: enrolls a backup that already exists under a replica's
/// prefix, local or over SFTP. Every top-level folder H is a host; every file below it an origin
/// of host H at its path with "&lt;prefix&gt;/H" replaced by "/", and a replica row that points at it.
/// Streams the tree in batches, so a million files take bounded memory; a second run changes nothing.
/// </summary>
public static class BackupImport
{
    const int BatchSize = 5000, Examples = 100;

    public static async Task<ImportReport> RunAsync(InventoryStore store, int replicaId, IReplicaTarget target, Action<string> progress, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        long files = 0, origins = 0, replicas = 0, refused = 0;
        var examples = new List<string>();
        var batch = new List<BackupFile>(BatchSize);

        void Refuse(string path, string why)
        {
            refused++;
            if (examples.Count < Examples)
                examples.Add($"{path}: {why}");
        }

        async Task FlushAsync()
        {
            if (batch.Count == 0)
                return;
            var added = await store.ImportAsync(replicaId, batch, cancellationToken);
            origins += added.Origins;
            replicas += added.Replicas;
            batch.Clear();
            progress($"{files:N0} files, {Output.Rate(files, clock.Elapsed)}, {origins:N0} origins and {replicas:N0} copies enrolled");
        }

        var prefix = await target.PrefixAsync(cancellationToken);
        await foreach (var top in target.ListAsync(prefix, cancellationToken))
        {
            if (top.IsLink)
            {
                Refuse(top.Path, "a symlink, not followed: it may lead out of the prefix");
                continue;
            }
            if (!top.IsFolder && Path.GetFileName(top.Path) == ReplicaMarker.FileName)
                continue;
            if (!top.IsFolder)
            {
                Refuse(top.Path, "not inside a host folder");
                continue;
            }
            var host = Path.GetFileName(top.Path);
            // Depth first, one folder listing at a time: memory grows with depth, not with the tree.
            var folders = new Stack<string>([top.Path]);
            while (folders.TryPop(out var folder))
            {
                await foreach (var entry in target.ListAsync(folder, cancellationToken))
                {
                    if (entry.IsLink)
                        Refuse(entry.Path, "a symlink, not followed: it may lead out of the prefix");
                    else if (entry.IsFolder)
                        folders.Push(entry.Path);
                    else if (!IsPart(entry.Path))
                    {
                        files++;
                        batch.Add(new BackupFile(host, entry.Path[top.Path.Length..], entry.Version.Mtime, entry.Version.Size, entry.Path));
                        if (batch.Count == BatchSize)
                            await FlushAsync();
                    }
                }
            }
        }
        await FlushAsync();
        return new ImportReport(files, origins, replicas, refused, examples);
    }

    /// <summary>A copy still being written, or an old copy being replaced (or either left by a killed replicator): not a backup file.</summary>
    public static bool IsPart(string path) =>
        (path.EndsWith(LocalFileCopy.PartSuffix, StringComparison.Ordinal) || path.EndsWith(SftpReplicaTarget.AsideSuffix, StringComparison.Ordinal))
        && Path.GetFileName(path).StartsWith('.');
}
