using Xtelemdb.Hosting;

namespace Xtelemdb.Replicator.Copying;

/// <summary>
/// What the inventory records of a replica's current copy, which the copy found still in place
/// (same size and mtime): a file that only grew since can send just what was appended.
/// </summary>
public readonly record struct HeldCopy(FileVersion Version, string Checksum);

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

    /// <summary>
    /// Whether copies here keep mtimes exactly, so that size and mtime tell a version from another;
    /// where they do not (SFTP's whole seconds), the copier's quick check compares the bytes too
    /// rather than record a version it cannot tell apart.
    /// </summary>
    bool KeepsMtimes { get; }

    /// <summary>
    /// Why a copy here is not on the replica's disk when CopyAsync returns (an SFTP server without
    /// fsync@openssh.com); null where it is. Known once a session was opened.
    /// </summary>
    string? Unflushed { get; }

    /// <summary>Copies into place through a temporary name; null when the source changed meanwhile.</summary>
    /// <param name="held">The recorded copy now at the target, where the source is larger: a target that can append to it (SFTP) sends only the rest.</param>
    /// <param name="mustHashTo">A repair's recorded checksum: bytes that hash otherwise never replace the target (<see cref="ChecksumMismatchException"/>).</param>
    Task<(FileVersion Version, string Checksum)?> CopyAsync(string source, string target, HeldCopy? held, Action<long>? progress, CancellationToken cancellationToken,
        string? mustHashTo = null);

    /// <summary>
    /// Renames a copy to another path of the replica (its origin file was moved there), making the
    /// target's folders as a copy does, never over anything at the target; where the replica can,
    /// both folders are flushed. Returns what the target then holds; null where nothing was renamed
    /// (the copy gone, the target taken, or no rename that is safe here): the caller copies instead.
    /// </summary>
    Task<FileVersion?> MoveAsync(string from, string to, CancellationToken cancellationToken);

    /// <summary>Whether CopyAsync makes use of a <see cref="HeldCopy"/>: the copier then looks the record up.</summary>
    bool Appends { get; }

    /// <summary>
    /// The copy this process last made at the path, where it remembers one: a growing file's next
    /// version may be asked for before the inventory has recorded the previous one.
    /// </summary>
    HeldCopy? LastCopied(string path);

    /// <summary>The entries of one folder, not recursing; symlinks are listed, never followed.</summary>
    IAsyncEnumerable<ReplicaEntry> ListAsync(string folder, CancellationToken cancellationToken);

    Task<string> ChecksumAsync(string path, CancellationToken cancellationToken);

    /// <summary>Whether the replica's marker is a regular file at its root; where it is not (a disk not mounted), nothing is written.</summary>
    Task<bool> HasMarkerAsync(CancellationToken cancellationToken);

    /// <summary>Writes the marker at the root, which must exist (add_replica): from then on the replica may be written.</summary>
    Task WriteMarkerAsync(string content, CancellationToken cancellationToken);
}

/// <summary>
/// The file at a replica's root that says "this is the replica", as Syncthing's .stfolder: a
/// backup disk that is not mounted leaves a bare mount point without it, and gets nothing.
/// </summary>
public static class ReplicaMarker
{
    public const string FileName = ".xtelemdb-replica";

    public static string Content(string replicaName) =>
        $"xtelemdb replica {replicaName}\nadded {DateTime.UtcNow:yyyy-MM-ddTHH:mm:ssZ}\nThe copies below are kept by xtelemdb; without this file nothing is written here.\n";
}
