using System.IO.Enumeration;
using Xtelemdb.Hosting;

namespace Xtelemdb.Watcher;

/// <summary>Stats every file under a folder, as find(1) would, without following symlinks.</summary>
static class TreeScan
{
    static readonly EnumerationOptions Options = new()
    {
        RecurseSubdirectories = true,
        // Symlinks are neither published nor followed; hidden (dot) files are data like any other.
        AttributesToSkip = FileAttributes.ReparsePoint,
        IgnoreInaccessible = true,
        ReturnSpecialDirectories = false,
    };

    /// <param name="skipped">
    /// Asked of the entries that may not be files to publish: an empty one (a FIFO, a device or a
    /// socket has no size), one whose name may not be UTF-8, a folder before it is entered; it
    /// reports each that is not.
    /// </param>
    public static IEnumerable<(string Path, FileVersion Version)> Files(string folder, SkippedFiles skipped) =>
        !Directory.Exists(folder) ? [] :
        new FileSystemEnumerable<(string, FileVersion)>(folder,
            (ref FileSystemEntry entry) => (entry.ToFullPath(), new FileVersion(entry.LastWriteTimeUtc.UtcDateTime, entry.Length)),
            Options)
        {
            ShouldIncludePredicate = (ref FileSystemEntry entry) => !entry.IsDirectory
                && (!RawNames.MayBeMangled(entry.FileName) || skipped.Nameable(entry.Directory.ToString(), entry.FileName.ToString(), isFolder: false))
                && (entry.Length > 0 || skipped.IsRegular(entry.ToFullPath())),
            // IgnoreInaccessible would pass over a folder it cannot open without a word: each is asked first.
            ShouldRecursePredicate = (ref FileSystemEntry entry) =>
                (!RawNames.MayBeMangled(entry.FileName) || skipped.Nameable(entry.Directory.ToString(), entry.FileName.ToString(), isFolder: true))
                && skipped.Readable(entry.ToFullPath()),
        };

    /// <summary>True when no folder between the root and the path is a symlink (the live watcher may report paths through one).</summary>
    public static bool NoLinkBetween(string root, string path)
    {
        for (var folder = Path.GetDirectoryName(path); folder is not null && folder.Length > root.Length; folder = Path.GetDirectoryName(folder))
        {
            if (new DirectoryInfo(folder).LinkTarget is not null)
                return false;
        }
        return true;
    }
}
