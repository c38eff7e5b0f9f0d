namespace Xtelemdb;

/// <summary>A replica lacks the current version of an origin file. Sent to the queue of (origin host, replica).</summary>
public sealed record ReplicaNeeded
{
    /// <summary>The replica, as the database knows it: what a replicator looks it up by.</summary>
    public required int ReplicaId { get; init; }
    /// <summary>Its name, for people and queue names: "exao1:/mnt/backup" (a host's folder) or the ssh:// URL.</summary>
    public required string ReplicaUrl { get; init; }
    public required string OriginHost { get; init => field = MessageGuard.Host(value); }
    public required string OriginPath { get; init => field = MessageGuard.OriginPath(value); }
    public DateTime Mtime { get; init => field = Microseconds.Truncate(value); }
    public long Size { get; init => field = MessageGuard.Size(value); }
    /// <summary>Copy even if the target looks current: verify found its bytes wrong.</summary>
    public bool Recopy { get; init; }
    /// <summary>
    /// Another origin path of the same host and file name whose copy this replica records at this
    /// version (with a checksum), and which vanished as this path appeared or is still known (a file
    /// moved into a day folder): where it is gone from the origin, the replicator renames that copy
    /// here instead of copying, if it still holds the version.
    /// </summary>
    public string? MovedFrom { get; init => field = value is null ? null : MessageGuard.OriginPath(value); }
}
