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
}
