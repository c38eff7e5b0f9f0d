namespace Xtelemdb.Storage;

/// <summary>A row of the replicas table.</summary>
public sealed record ReplicaRecord
{
    public int Id { get; init; }
    public required string Url { get; init; }
    public required string Kind { get; init; }
    public bool Enabled { get; init; }
    /// <summary>Set by <see cref="InventoryStore.RegisterReplicaAsync"/> only.</summary>
    public bool IsNew { get; init; }
}
