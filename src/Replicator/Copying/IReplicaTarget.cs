using Xtelemdb.Hosting;

namespace Xtelemdb.Replicator.Copying;

/// <summary>A file or folder found on a replica.</summary>
public readonly record struct ReplicaEntry(string Path, bool IsFolder, bool IsLink, FileVersion Version);

/// <summary>Where a replica's copies live: a local folder or an SFTP server. Every path is under the replica's prefix.</summary>
public interface IReplicaTarget
{
    /// <summary>&lt;prefix&gt;/&lt;origin host&gt;&lt;origin path&gt;, refusing anything that would leave the prefix.</summary>
    Task<string> PathForAsync(string originHost, string originPath, CancellationToken cancellationToken);

    /// <summary>The absolute prefix, as paths on this replica are written.</summary>
    Task<string> PrefixAsync(CancellationToken cancellationToken);

    /// <summary>Refuses a target below a symlinked folder, which could lead out of the prefix.</summary>
    Task EnsureInsidePrefixAsync(string target, CancellationToken cancellationToken);

    /// <summary>The version a regular file holds; null if it is missing or not a regular file.</summary>
    Task<FileVersion?> StatAsync(string path, CancellationToken cancellationToken);

    /// <summary>Whether a copy holds a source's version, at the precision this kind of replica keeps mtimes.</summary>
    bool Holds(FileVersion copy, FileVersion source);

    /// <summary>Copies into place through a temporary name; null when the source changed meanwhile.</summary>
    Task<(FileVersion Version, string Checksum)?> CopyAsync(string source, string target, Action<long>? progress, CancellationToken cancellationToken);

    /// <summary>The entries of one folder, not recursing; symlinks are listed, never followed.</summary>
    IAsyncEnumerable<ReplicaEntry> ListAsync(string folder, CancellationToken cancellationToken);

    Task<string> ChecksumAsync(string path, CancellationToken cancellationToken);
}
