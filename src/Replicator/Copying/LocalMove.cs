using Xtelemdb.Hosting;

namespace Xtelemdb.Replicator.Copying;

/// <summary>A copy renamed within a local replica, as durable as a copy put in place.</summary>
static class LocalMove
{
    /// <summary>
    /// rename(2) that refuses to replace (RENAME_NOREPLACE), into folders made as needed; then the
    /// new folder, the folders made for it, and the old folder are flushed, in that order: a crash
    /// never leaves the copy in neither place.
    /// </summary>
    /// <returns>What the new path holds; null where nothing was renamed (the copy gone, the target taken, a file system that cannot refuse).</returns>
    public static FileVersion? Rename(string from, string to)
    {
        var folder = Path.GetDirectoryName(to)!;
        var made = new List<string>();
        for (var missing = folder; !Directory.Exists(missing); missing = Path.GetDirectoryName(missing)!)
            made.Add(missing);
        Directory.CreateDirectory(folder);
        if (!Posix.RenameNoReplace(from, to))
            return null;
        Posix.FsyncDirectory(folder);
        foreach (var child in made)
            Posix.FsyncDirectory(Path.GetDirectoryName(child)!);
        Posix.FsyncDirectory(Path.GetDirectoryName(from)!);
        return FileVersion.Of(to);
    }
}
