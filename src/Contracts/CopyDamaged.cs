namespace Xtelemdb;

/// <summary>
/// A replica's copy whose bytes no longer hash to its recorded checksum while its size and mtime
/// are unchanged (bit rot, a bad disk block), found by the rolling fixity check. Sent as plain JSON
/// to the queue "fixity_error" for operators; nothing consumes it.
/// </summary>
public sealed record CopyDamaged
{
    public required string Replica { get; init; }
    public required string OriginHost { get; init; }
    public required string OriginPath { get; init; }
    public required string ReplicaPath { get; init; }
    public DateTime Mtime { get; init; }
    public long Size { get; init; }
    public required string RecordedChecksum { get; init; }
    public required string FoundChecksum { get; init; }
    /// <summary>Where the recorded bytes were copied back from (another replica, or the origin); null when nothing here held them.</summary>
    public string? RepairedFrom { get; init; }
    public DateTime DetectedAt { get; init; }
}
