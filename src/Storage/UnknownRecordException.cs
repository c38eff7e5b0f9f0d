namespace Xtelemdb.Storage;

/// <summary>A message names a replica or an origin file the inventory does not know; retrying cannot help.</summary>
public sealed class UnknownRecordException(string message) : Exception(message);

/// <summary>A replica named by a bare path that is a folder on several hosts; retrying cannot help.</summary>
public sealed class AmbiguousReplicaException(string message) : Exception(message);
