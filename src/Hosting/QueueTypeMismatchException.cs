using RabbitMQ.Client.Exceptions;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Hosting;

/// <summary>
/// A queue exists with another type than [broker] queue_type says. RabbitMQ refuses to declare it
/// again (406 PRECONDITION_FAILED, inequivalent arg 'x-queue-type') and cannot change its type, so
/// retrying cannot help: the service stops and says how to migrate.
/// </summary>
public sealed class QueueTypeMismatchException(string queue, BrokerSettings broker, string brokerSays, Exception inner)
    : Exception($"queue {queue} in virtual host \"{broker.VirtualHost}\" is not of the type [broker] queue_type = \"{broker.QueueType.ToString().ToLowerInvariant()}\" asks for, and RabbitMQ cannot change a queue's type ({brokerSays}). "
        + "To change queue_type: stop every xtelemdb service of this virtual host, delete its queues (look at the _error queues first), "
        + "start the services with the new queue_type, then run 'xtelemdb sync' (see \"Changing queue_type\" in the README)", inner)
{
    /// <summary>A bad configuration, as the command line's exit code 2.</summary>
    public const int ExitCode = 2;

    public string Queue { get; } = queue;

    /// <summary>The mismatch, when this failure of a declaration is one.</summary>
    public static QueueTypeMismatchException? From(Exception e, string queue, BrokerSettings broker) =>
        e is OperationInterruptedException { ShutdownReason: { ReplyCode: 406, ReplyText: var text } } && text.Contains("'x-queue-type'", StringComparison.Ordinal)
            ? new QueueTypeMismatchException(queue, broker, text, e)
            : null;
}
