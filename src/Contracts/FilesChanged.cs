namespace Xtelemdb;

/// <summary>
/// Many FileChanged in one message: what a watcher's scan, poll or burst of live events found.
/// One message per file costs the broker and the inventory more than the upsert itself does;
/// a list of them costs the same per message. The inventory records each entry as a FileChanged.
/// </summary>
public sealed record FilesChanged
{
    /// <summary>Keeps a message small (about 45 KiB for the watcher's 250 entries) and the inventory's prefetch bounded.</summary>
    public const int MaxFiles = 1000;

    public required IReadOnlyList<FileChanged> Files { get; init => field = MessageGuard.Count(value, MaxFiles, "files"); }
}
