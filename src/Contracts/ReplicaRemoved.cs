namespace Xtelemdb;

/// <summary>A replica left the replica set (its records stay); replicators stop copying to it.</summary>
public sealed record ReplicaRemoved
{
    public required int ReplicaId { get; init; }
    public required string ReplicaUrl { get; init; }
}
