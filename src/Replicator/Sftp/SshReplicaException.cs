namespace Xtelemdb.Replicator.Sftp;

/// <summary>An SSH replica that cannot be reached as configured: an unknown or changed host key, a refused key, no key at all.</summary>
public sealed class SshReplicaException(string message, Exception? inner = null) : Exception(message, inner);
