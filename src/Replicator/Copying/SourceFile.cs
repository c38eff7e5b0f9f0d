using Microsoft.Win32.SafeHandles;
using Xtelemdb.Hosting;

namespace Xtelemdb.Replicator.Copying;

/// <summary>
/// An origin file opened for one copy, stated before (rule 2 of the design) so that the copier
/// can tell afterwards whether the bytes it read are the version it reports.
/// </summary>
public sealed class SourceFile : IDisposable
{
    SourceFile(string path, SafeFileHandle handle)
    {
        Path = path;
        Handle = handle;
        Version = StatOf(handle);
    }

    public string Path { get; }
    public SafeFileHandle Handle { get; }
    /// <summary>The version stated when the file was opened; reads never go past its size.</summary>
    public FileVersion Version { get; }

    /// <exception cref="FileNotFoundException">The file is gone.</exception>
    public static SourceFile Open(string path) =>
        new(path, File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, FileOptions.SequentialScan));

    /// <summary>
    /// True when all of the stated size was read and the file still states the same version,
    /// through the handle (rewritten in place) and through its path (replaced by a rename).
    /// </summary>
    public bool Unchanged(long bytesRead) =>
        bytesRead == Version.Size && StatOf(Handle).SameAs(Version) && FileVersion.Of(Path) is { } now && now.SameAs(Version);

    /// <summary>
    /// True when all of the stated size was read and the file has only grown since (a log being
    /// appended): the same file at the path, larger. Whether its first bytes are still those read
    /// is for the caller to check.
    /// </summary>
    public bool OnlyGrew(long bytesRead) =>
        bytesRead == Version.Size && RandomAccess.GetLength(Handle) > Version.Size
        && FileVersion.Of(Path) is { } now && now.Size > Version.Size && FileKinds.SameFile(Handle, Path);

    /// <summary>How often a long copy looks at its source: a file that changes is abandoned at once, not copied, flushed and thrown away.</summary>
    public const long CheckEvery = 32L << 20;

    /// <summary>Whether the file, through the handle, already states another version (a write since it was opened).</summary>
    public bool ChangedSinceOpened() => !StatOf(Handle).SameAs(Version);

    static FileVersion StatOf(SafeFileHandle handle) => new(File.GetLastWriteTimeUtc(handle), RandomAccess.GetLength(handle));

    public void Dispose() => Handle.Dispose();
}
