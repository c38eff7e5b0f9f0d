namespace Xtelemdb.Replicator.Copying;

/// <summary>
/// A copy outlasted [replicator] copy_timeout. Not retried: the same copy would time out again,
/// and the message would loop. The operator raises copy_timeout (and RabbitMQ's consumer_timeout
/// with it), or the bandwidth_limit, then resyncs.
/// </summary>
public sealed class CopyTimeoutException(string message) : Exception(message);
