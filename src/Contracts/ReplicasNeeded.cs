namespace Xtelemdb;

/// <summary>
/// Many ReplicaNeeded of one (origin host, replica) pair in one message, sent to that pair's queue:
/// a backlog, a scan's new files. A message costs the broker and a consumer far more than a small
/// file's copy does; a list costs the same per message. The replicator copies the files together
/// and makes them durable as a group. Single ReplicaNeeded keep working beside it.
/// </summary>
public sealed record ReplicasNeeded
{
    /// <summary>A list's copies are made together within copy_timeout, so it is bounded in files and bytes.</summary>
    public const int MaxFiles = 250;

    /// <summary>A larger file is sent alone; a list's files together stay below this (unless alone).</summary>
    public const long MaxBytes = 32L << 20;

    public required IReadOnlyList<ReplicaNeeded> Files { get; init => field = MessageGuard.Count(value, MaxFiles, "files"); }
}
