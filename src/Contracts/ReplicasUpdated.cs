namespace Xtelemdb;

/// <summary>
/// Many ReplicaUpdated in one message: what a replicator made of a ReplicasNeeded list. The
/// inventory records each entry as a ReplicaUpdated; single ones keep working beside it.
/// </summary>
public sealed record ReplicasUpdated
{
    public required IReadOnlyList<ReplicaUpdated> Files { get; init => field = MessageGuard.Count(value, ReplicasNeeded.MaxFiles, "files"); }
}
