namespace Xtelemdb.Replicator.Copying;

/// <summary>A computed path that would leave the replica's prefix; never retried.</summary>
public sealed class UnsafePathException(string message) : Exception(message);

/// <summary>Where a replica's copy of an origin file lives: &lt;prefix&gt;/&lt;origin host&gt;&lt;origin path&gt;.</summary>
public static class ReplicaTargets
{
    public static string PathFor(string prefix, string originHost, string originPath)
    {
        // The message guards ran when the message was read; check again, since this is the last line of defence.
        try
        {
            MessageGuard.Host(originHost);
            MessageGuard.OriginPath(originPath);
        }
        catch (ArgumentException e)
        {
            throw new UnsafePathException($"refusing to copy {originHost}:{originPath} under {prefix}: {e.Message}");
        }
        return Path.TrimEndingDirectorySeparator(prefix) + "/" + originHost + originPath;
    }

    /// <summary>
    /// Refuses a target whose folders below the prefix include a symlink, which could lead out of
    /// the prefix. Folders that do not exist yet are fine: the copier makes them as real folders.
    /// </summary>
    public static void EnsureInsidePrefix(string prefix, string target)
    {
        var root = Path.TrimEndingDirectorySeparator(prefix);
        var folder = Path.GetDirectoryName(target)!;
        if (!target.StartsWith(root + "/", StringComparison.Ordinal))
            throw new UnsafePathException($"{target} is not under the replica prefix {root}");
        for (var current = folder; current.Length > root.Length; current = Path.GetDirectoryName(current)!)
        {
            var info = new DirectoryInfo(current);
            if (info.LinkTarget is not null)
                throw new UnsafePathException($"refusing to copy to {target}: {current} is a symlink (to {info.LinkTarget}) and may lead out of {root}");
            if (!info.Exists && File.Exists(current))
                throw new UnsafePathException($"refusing to copy to {target}: {current} is a file, not a folder");
        }
        if (new FileInfo(target).LinkTarget is { } link)
            throw new UnsafePathException($"refusing to copy to {target}: it is a symlink (to {link})");
    }
}
