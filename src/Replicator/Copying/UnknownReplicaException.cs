namespace Xtelemdb.Replicator.Copying;

/// <summary>A request for a replica this replicator was not configured with, or for another host's files.</summary>
public sealed class UnknownReplicaException(string message) : Exception(message);
