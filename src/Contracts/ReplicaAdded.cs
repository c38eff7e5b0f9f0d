namespace Xtelemdb;

/// <summary>A replica joined the replica set, was enabled again or selects otherwise; the inventory back-fills it, replicators reread the set.</summary>
public sealed record ReplicaAdded
{
    public required int ReplicaId { get; init; }
    public required string ReplicaUrl { get; init; }
}
