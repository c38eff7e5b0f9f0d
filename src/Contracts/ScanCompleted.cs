namespace Xtelemdb;

/// <summary>
/// A watcher's start-up scan has reported every file under these roots, each observed at or after
/// StartedAt. A file of this host under them that the scan did not report was deleted while nobody
/// watched: the inventory marks it missing (its replicas stay).
/// </summary>
public sealed record ScanCompleted
{
    public required string Host { get; init => field = MessageGuard.Host(value); }
    public required IReadOnlyList<string> Roots { get; init => field = [.. value.Select(MessageGuard.OriginPath)]; }
    public DateTime StartedAt { get; init => field = Microseconds.Truncate(value); }
}
