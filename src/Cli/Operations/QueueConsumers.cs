using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Cli.Operations;

/// <summary>A queue as the broker sees it now.</summary>
public readonly record struct QueueState(uint Consumers, uint Messages);

/// <summary>
/// How many consumers and ready messages each queue has, as the broker says (a passive declare):
/// a pair whose queue has no consumer is served by no running replicator, whatever its backlog.
/// </summary>
public static class QueueConsumers
{
    /// <summary>The state of each queue; (0, 0) for a queue that does not exist yet.</summary>
    public static async Task<IReadOnlyDictionary<string, QueueState>> CountAsync(BrokerSettings broker, IEnumerable<string> queues, CancellationToken cancellationToken)
    {
        await using var connection = await BrokerConnection.OpenAsync(broker, "xtelemdb replica_list", cancellationToken);
        var counts = new Dictionary<string, QueueState>(StringComparer.Ordinal);
        foreach (var queue in queues.Distinct(StringComparer.Ordinal))
        {
            // A passive declare of a missing queue closes its channel: one channel per queue.
            await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
            try
            {
                var declared = await channel.QueueDeclarePassiveAsync(queue, cancellationToken);
                counts[queue] = new QueueState(declared.ConsumerCount, declared.MessageCount);
            }
            catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == 404)
            {
                counts[queue] = default;
            }
        }
        return counts;
    }
}
