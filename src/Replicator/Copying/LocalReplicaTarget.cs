using System.IO.Enumeration;
using System.Runtime.CompilerServices;
using Xtelemdb.Hosting;

namespace Xtelemdb.Replicator.Copying;

/// <summary>A replica in a local (or mounted) folder.</summary>
public sealed class LocalReplicaTarget(string prefix) : IReplicaTarget
{
    readonly FlushGroup flushes = new();

    public Task<string> PathForAsync(string originHost, string originPath, CancellationToken cancellationToken) =>
        Task.FromResult(ReplicaTargets.PathFor(prefix, originHost, originPath));

    public Task<string> PrefixAsync(CancellationToken cancellationToken) => Task.FromResult(prefix);

    public Task EnsureInsidePrefixAsync(string target, CancellationToken cancellationToken)
    {
        ReplicaTargets.EnsureInsidePrefix(prefix, target);
        return Task.CompletedTask;
    }

    public Task<FileVersion?> StatAsync(string path, CancellationToken cancellationToken) => Task.FromResult(FileVersion.Of(path));

    public bool Holds(FileVersion copy, FileVersion source) => copy.SameAs(source);

    public bool KeepsMtimes => true;

    public string? Unflushed => null;

    /// <summary>A local copy is read and written at the disk's pace: an append costs little more to copy whole.</summary>
    public Task<(FileVersion Version, string Checksum)?> CopyAsync(string source, string target, HeldCopy? held, Action<long>? progress, CancellationToken cancellationToken,
        string? mustHashTo = null) =>
        LocalFileCopy.CopyAsync(source, target, progress, cancellationToken, mustHashTo, flushes);

    public Task<FileVersion?> MoveAsync(string from, string to, CancellationToken cancellationToken) => Task.FromResult(LocalMove.Rename(from, to));

    public bool Appends => false;

    public HeldCopy? LastCopied(string path) => null;

    public async IAsyncEnumerable<ReplicaEntry> ListAsync(string folder, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var entries = new FileSystemEnumerable<ReplicaEntry>(folder,
            (ref FileSystemEntry e) => new ReplicaEntry(e.ToFullPath(), e.IsDirectory, (e.Attributes & FileAttributes.ReparsePoint) != 0,
                new FileVersion(e.LastWriteTimeUtc.UtcDateTime, e.IsDirectory ? 0 : e.Length)),
            new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = true });
        foreach (var entry in entries)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return entry;
        }
        await Task.CompletedTask;
    }

    public Task<string> ChecksumAsync(string path, CancellationToken cancellationToken) => FileChecksum.OfFileAsync(path, cancellationToken);

    public Task<bool> HasMarkerAsync(CancellationToken cancellationToken)
    {
        var marker = new FileInfo(Path.Combine(prefix, ReplicaMarker.FileName));
        return Task.FromResult(marker.Exists && marker.LinkTarget is null);
    }

    public async Task WriteMarkerAsync(string content, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(prefix))
            throw new DirectoryNotFoundException($"the replica folder {prefix} does not exist");
        var marker = Path.Combine(prefix, ReplicaMarker.FileName);
        await using var stream = new FileStream(marker, FileMode.Create, FileAccess.Write);
        await stream.WriteAsync(System.Text.Encoding.UTF8.GetBytes(content), cancellationToken);
        stream.Flush(flushToDisk: true);
    }
}
