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

    /// <param name="regular">Asked of the empty entries only (a FIFO, a device or a socket has no size): whether it is a regular file to publish.</param>
    public static IEnumerable<(string Path, FileVersion Version)> Files(string folder, Func<string, bool> regular) =>
        !Directory.Exists(folder) ? [] :
        new FileSystemEnumerable<(string, FileVersion)>(folder,
            (ref FileSystemEntry entry) => (entry.ToFullPath(), new FileVersion(entry.LastWriteTimeUtc.UtcDateTime, entry.Length)),
            Options)
        {
            ShouldIncludePredicate = (ref FileSystemEntry entry) => !entry.IsDirectory && (entry.Length > 0 || regular(entry.ToFullPath())),
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
