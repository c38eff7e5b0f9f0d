namespace Xtelemdb;

/// <summary>A replica joined the replica set; the inventory back-fills it.</summary>
public sealed record ReplicaAdded
{
    public required int ReplicaId { get; init; }
    public required string ReplicaUrl { get; init; }
}
