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
public sealed class QueueConsumers : IAsyncDisposable
{
    readonly IConnection connection;

    QueueConsumers(IConnection connection) => this.connection = connection;

    /// <summary>
    /// Connects on a thread of its own, so that the command reads the database meanwhile: a
    /// process's first connection, to either server, costs a few hundred milliseconds of start-up.
    /// </summary>
    public static Task<QueueConsumers> ConnectAsync(BrokerSettings broker, CancellationToken cancellationToken) =>
        Task.Run(async () => new QueueConsumers(await BrokerConnection.OpenAsync(broker, "xtelemdb replica_list", cancellationToken)), cancellationToken);

    /// <summary>The state of each queue; (0, 0) for a queue that does not exist yet.</summary>
    public async Task<IReadOnlyDictionary<string, QueueState>> CountAsync(IEnumerable<string> queues, CancellationToken cancellationToken)
    {
        var counts = new Dictionary<string, QueueState>(StringComparer.Ordinal);
        IChannel? channel = null;
        try
        {
            foreach (var queue in queues.Distinct(StringComparer.Ordinal))
            {
                channel ??= await connection.CreateChannelAsync(cancellationToken: cancellationToken);
                try
                {
                    var declared = await channel.QueueDeclarePassiveAsync(queue, cancellationToken);
                    counts[queue] = new QueueState(declared.ConsumerCount, declared.MessageCount);
                }
                catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == 404)
                {
                    counts[queue] = default;
                    // A passive declare of a missing queue closes its channel: the next queue needs another.
                    await channel.DisposeAsync();
                    channel = null;
                }
            }
        }
        finally
        {
            if (channel is not null)
                await channel.DisposeAsync();
        }
        return counts;
    }

    public ValueTask DisposeAsync() => connection.DisposeAsync();
}
