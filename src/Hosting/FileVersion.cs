namespace Xtelemdb.Hosting;

/// <summary>A file's version: its mtime (UTC, compared at microseconds) and size.</summary>
public readonly record struct FileVersion(DateTime Mtime, long Size)
{
    public bool SameAs(FileVersion other) =>
        Size == other.Size && Microseconds.Truncate(Mtime) == Microseconds.Truncate(other.Mtime);

    /// <summary>Stats a path without following a final symlink: null unless it is a file (not a folder, not a link).</summary>
    public static FileVersion? Of(string path)
    {
        var info = new FileInfo(path);
        return info.Exists && info.LinkTarget is null ? new FileVersion(info.LastWriteTimeUtc, info.Length) : null;
    }

    public override string ToString() => $"{Size} bytes, mtime {Mtime:O}";
}
