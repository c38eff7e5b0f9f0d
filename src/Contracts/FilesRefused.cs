namespace Xtelemdb;

/// <summary>
/// Files of a host the inventory cannot record, whatever is retried: the database refuses their row
/// for what it holds (a path too long for its index). Published by the inventory, which recorded
/// the rest of their list; the host's watcher lists them with what it does not back up, so that
/// verify names them, and does not report them again until they change.
/// </summary>
public sealed record FilesRefused
{
    /// <summary>How each refused file's reason begins, where verify lists it: verify fails on such a file, unlike a FIFO.</summary>
    public const string Reason = "refused by the inventory's database";

    public required string Host { get; init => field = MessageGuard.Host(value); }

    /// <summary>Each file, and the database's reason.</summary>
    public required IReadOnlyList<SkippedFile> Files { get; init => field = MessageGuard.Count(value, FilesChanged.MaxFiles, "refused files"); }
}
