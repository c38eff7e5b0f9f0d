namespace Xtelemdb;

/// <summary>A replica lacks the current version of an origin file. Sent to the queue of (origin host, replica).</summary>
public sealed record ReplicaNeeded
{
    public required int ReplicaId { get; init; }
    public required string ReplicaUrl { get; init; }
    public required string OriginHost { get; init => field = MessageGuard.Host(value); }
    public required string OriginPath { get; init => field = MessageGuard.OriginPath(value); }
    public DateTime Mtime { get; init => field = Microseconds.Truncate(value); }
    public long Size { get; init => field = MessageGuard.Size(value); }
    /// <summary>Copy even if the target looks current: verify found its bytes wrong.</summary>
    public bool Recopy { get; init; }
}
