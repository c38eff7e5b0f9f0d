using System.Diagnostics;
using System.IO.Enumeration;
using Xtelemdb.Storage;

namespace Xtelemdb.Cli.Operations;

/// <summary>What an import enrolled, and what it refused.</summary>
public sealed record ImportReport(long Files, long OriginsAdded, long ReplicasAdded, long Refused, IReadOnlyList<string> RefusedExamples);

/// <summary>
/// The reverse process of the design: enrolls a backup that already exists under a replica's
/// prefix. Every top-level folder H is a host; every file below it an origin of host H at its path
/// with "&lt;prefix&gt;/H" replaced by "/", and a replica row that points at it. Streams the tree in
/// batches, so a million files take bounded memory; a second run changes nothing.
/// </summary>
public static class BackupImport
{
    const int BatchSize = 5000, Examples = 100;
    const string PartSuffix = ".xtelemdb-part";

    public static async Task<ImportReport> RunAsync(InventoryStore store, int replicaId, string prefix, Action<string> progress, CancellationToken cancellationToken)
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

        foreach (var entry in Entries(prefix, recurse: false))
        {
            if (!entry.IsFolder)
                Refuse(entry.Path, entry.IsLink ? "a symlink, not followed" : "not inside a host folder");
            else if (entry.IsLink)
                Refuse(entry.Path, "a symlink, not followed: it may lead out of the prefix");
        }
        foreach (var hostFolder in Entries(prefix, recurse: false).Where(e => e.IsFolder && !e.IsLink))
        {
            var host = Path.GetFileName(hostFolder.Path);
            foreach (var entry in Entries(hostFolder.Path, recurse: true))
            {
                if (entry.IsLink)
                    Refuse(entry.Path, "a symlink, not followed: it may lead out of the prefix");
                if (entry.IsFolder || entry.IsLink || IsPart(entry.Path))
                    continue;
                files++;
                batch.Add(new BackupFile(host, entry.Path[hostFolder.Path.Length..], entry.Mtime, entry.Size, entry.Path));
                if (batch.Count == BatchSize)
                    await FlushAsync();
            }
        }
        await FlushAsync();
        return new ImportReport(files, origins, replicas, refused, examples);
    }

    static bool IsPart(string path) => path.EndsWith(PartSuffix, StringComparison.Ordinal) && Path.GetFileName(path).StartsWith('.');

    readonly record struct Entry(string Path, bool IsFolder, bool IsLink, DateTime Mtime, long Size);

    /// <summary>Files, folders and symlinks under a folder; symlinked folders are listed, never entered.</summary>
    static IEnumerable<Entry> Entries(string folder, bool recurse) =>
        new FileSystemEnumerable<Entry>(folder,
            (ref FileSystemEntry e) => new Entry(e.ToFullPath(), e.IsDirectory, (e.Attributes & FileAttributes.ReparsePoint) != 0,
                e.LastWriteTimeUtc.UtcDateTime, e.IsDirectory ? 0 : e.Length),
            new EnumerationOptions { RecurseSubdirectories = recurse, AttributesToSkip = 0, IgnoreInaccessible = true })
        {
            ShouldRecursePredicate = (ref FileSystemEntry e) => (e.Attributes & FileAttributes.ReparsePoint) == 0,
        };
}
