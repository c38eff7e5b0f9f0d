namespace Xtelemdb.Replicator.Copying;

/// <summary>A source that is a FIFO, a device or a socket: never opened (a FIFO would block the copy slot), never retried.</summary>
public sealed class NotRegularFileException(string message) : Exception(message);
