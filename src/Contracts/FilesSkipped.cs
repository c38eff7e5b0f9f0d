namespace Xtelemdb;

/// <summary>
/// Every entry a watcher found under these roots at its last full poll and does not back up: a
/// FIFO, a device, a socket, a name that is not valid UTF-8, a folder it may not read. Complete for
/// the roots listed: the inventory replaces what it held for them, and verify lists it.
/// </summary>
public sealed record FilesSkipped
{
    public required string Host { get; init => field = MessageGuard.Host(value); }
    public required IReadOnlyList<string> Roots { get; init => field = [.. value.Select(MessageGuard.OriginPath)]; }
    public required IReadOnlyList<SkippedFile> Files { get; init => field = MessageGuard.Count(value, 100_000, "skipped files", allowEmpty: true); }
    public DateTime SeenAt { get; init => field = Microseconds.Truncate(value); }
}

/// <param name="Path">The path as the watcher can name it: bytes that are not UTF-8 are written \xNN.</param>
/// <param name="Reason">Why it is not backed up: "a FIFO", "a name that is not valid UTF-8"…</param>
/// <param name="Folder">A folder: nothing below it is backed up either.</param>
public sealed record SkippedFile(string Path, string Reason, bool Folder = false);
