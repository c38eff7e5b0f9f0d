namespace Xtelemdb;

/// <summary>
/// Rebuild the backlog from the database. Every field narrows it; none means everything.
/// Operators publish this as plain JSON from the RabbitMQ management UI.
/// </summary>
public sealed record ResyncRequested
{
    /// <summary>A replica URL as registered, e.g. "/mnt/backup".</summary>
    public string? Replica { get; init; }
    public string? OriginHost { get; init; }
    public string? PathPrefix { get; init; }
}
