namespace Xtelemdb;

/// <summary>
/// A replica now holds this version of an origin file. Mtime and Size are what the copier
/// stated on the source before and after the copy, not what was asked for.
/// </summary>
public sealed record ReplicaUpdated
{
    public required int ReplicaId { get; init; }
    public required string OriginHost { get; init => field = MessageGuard.Host(value); }
    public required string OriginPath { get; init => field = MessageGuard.OriginPath(value); }
    public DateTime Mtime { get; init => field = Microseconds.Truncate(value); }
    public long Size { get; init => field = MessageGuard.Size(value); }
    public required string ReplicaPath { get; init; }
    /// <summary>"xxh3:" and the hex XxHash3 of the bytes on the replica.</summary>
    public string? Checksum { get; init; }
    /// <summary>When the source was last stated at this version; orders reports of one file.</summary>
    public DateTime CopiedAt { get; init => field = Microseconds.Truncate(value); }
    /// <summary>
    /// The origin path (same host) whose copy on this replica is no longer at its own path: renamed
    /// here, or found gone where this copy stands. Its record is forgotten, unless a later copy of it is recorded.
    /// </summary>
    public string? MovedFrom { get; init => field = value is null ? null : MessageGuard.OriginPath(value); }
}
