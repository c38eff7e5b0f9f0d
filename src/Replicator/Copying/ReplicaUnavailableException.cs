namespace Xtelemdb.Replicator.Copying;

/// <summary>
/// A replica without its marker (a backup disk not mounted, a mount point left empty): nothing is
/// written; the request goes to the error queue at once, to be asked again by a sync once it is back.
/// </summary>
public sealed class ReplicaUnavailableException(string message) : Exception(message);
