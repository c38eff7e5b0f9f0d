namespace Xtelemdb;

/// <summary>A watcher saw a file at this version (or saw it vanish) on its host.</summary>
public sealed record FileChanged
{
    public required string Host { get; init => field = MessageGuard.Host(value); }
    public required string Path { get; init => field = MessageGuard.OriginPath(value); }
    public DateTime Mtime { get; init => field = Microseconds.Truncate(value); }
    public long Size { get; init => field = MessageGuard.Size(value); }
    public DateTime ObservedAt { get; init => field = Microseconds.Truncate(value); }
    /// <summary>The file no longer exists; its replicas are kept and the origin is marked missing.</summary>
    public bool Deleted { get; init; }
}
