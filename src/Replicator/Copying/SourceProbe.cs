namespace Xtelemdb.Replicator.Copying;

/// <summary>
/// Decides whether an origin file this replicator did not find is really gone. The origin's
/// watcher reports deletions; a replicator that merely cannot see a file (through a mount that is
/// not mounted, a folder it may not enter) must say so rather than acknowledge the request.
/// </summary>
public static class SourceProbe
{
    /// <param name="mount">The mount this host reads the origin's files through; null for its own files.</param>
    /// <exception cref="SourceUnavailableException">The file may exist but cannot be read here.</exception>
    public static void EnsureGone(string originHost, string source, string? mount)
    {
        if (mount is not null && (!Directory.Exists(mount) || !Directory.EnumerateFileSystemEntries(mount).Any()))
            throw new SourceUnavailableException($"cannot read {originHost}'s files: their mount {mount} is empty or missing (not mounted?)");
        // On its own host, a file replaced by a symlink is gone as the watcher sees it (it publishes no symlink).
        if (mount is null && Xtelemdb.Hosting.FileKinds.Of(source) == Xtelemdb.Hosting.FileKind.Symlink)
            return;
        try
        {
            var attributes = File.GetAttributes(source);
            if ((attributes & FileAttributes.Directory) == 0)
                throw new SourceUnavailableException($"{source} exists but is not a regular file this replicator can read (a symlink that does not resolve here?)");
            return; // a folder now: the watcher reports the file's deletion
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException and not SourceUnavailableException)
        {
            throw new SourceUnavailableException($"cannot read {source}: {e.Message}");
        }
        if (mount is not null && AbsoluteLinkUnder(mount, source) is { } link)
            throw new SourceUnavailableException($"cannot read {source}: {link.Path} is a symlink to {link.Target}, which this host resolves on its own disk, not {originHost}'s");
    }

    /// <summary>The first folder below the mount that is a symlink to an absolute path.</summary>
    static (string Path, string Target)? AbsoluteLinkUnder(string mount, string source)
    {
        var root = Path.TrimEndingDirectorySeparator(mount);
        var current = root;
        foreach (var part in source[root.Length..].Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            current += "/" + part;
            var info = new DirectoryInfo(current);
            if (info.LinkTarget is { } target && target.StartsWith('/'))
                return (current, target);
            if (!info.Exists)
                return null;
        }
        return null;
    }
}
