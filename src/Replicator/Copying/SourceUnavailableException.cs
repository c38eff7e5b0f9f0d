namespace Xtelemdb.Replicator.Copying;

/// <summary>
/// An origin file this replicator cannot read, where it cannot tell that the file is gone: a
/// permission refused, an origin mount that is empty (not mounted), a symlink that resolves on
/// this host's disk instead of the origin's. Retried, then the error queue: never "source missing".
/// </summary>
public sealed class SourceUnavailableException(string message) : IOException(message);
