namespace Xtelemdb;

/// <summary>
/// The inventory's answer to a resync, sent as plain JSON to the bounded queue "resync-results",
/// where an operator who published the resync in the management UI reads it with "Get messages".
/// </summary>
public sealed record ResyncCompleted
{
    public const string Requested = "requested";
    public const string Refused = "refused";

    /// <summary><see cref="Requested"/>: the copies were asked for; <see cref="Refused"/>: nothing was, see <see cref="Reason"/>.</summary>
    public required string Outcome { get; init; }
    /// <summary>The body as published (its first 2,000 characters), to tell one answer from another.</summary>
    public required string Request { get; init; }
    /// <summary>The replica as registered, e.g. "exao1:/mnt/backup"; null for every replica.</summary>
    public string? Replica { get; init; }
    public string? OriginHost { get; init; }
    public string? PathPrefix { get; init; }
    public long CopiesRequested { get; init; }
    /// <summary>Why a resync was refused: the MT-Fault-Message header of the request, now in resync-requested_error (for a body that is not a resync, with what one looks like).</summary>
    public string? Reason { get; init; }
    public DateTime At { get; init; }
}
