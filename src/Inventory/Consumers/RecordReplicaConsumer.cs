using MassTransit;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory.Consumers;

/// <summary>
/// Records what a replica now holds; if the origin moved on meanwhile, asks for it again. Sends
/// through the bus, not the delivery, as OriginRecorder does (see there); so does the list's consumer.
/// </summary>
public sealed class RecordReplicaConsumer(CopyRecorder recorder, ReplicaNeeds replicaNeeds, IBus bus) : IConsumer<ReplicaUpdated>
{
    public async Task Consume(ConsumeContext<ReplicaUpdated> context)
    {
        var needs = await recorder.RecordAsync(context.Message, context.CancellationToken);
        await replicaNeeds.SendAsync(bus, needs, context.CancellationToken);
    }
}

/// <summary>
/// The same for a replicator's list of copies. A copy that names something unknown is sent back to
/// the queue alone, to fail there by itself (and land in the error queue) while the rest are recorded.
/// </summary>
public sealed class RecordReplicaListConsumer(CopyRecorder recorder, ReplicaNeeds replicaNeeds, QueueLabels labels, IBus bus, ILogger<RecordReplicaListConsumer> logger)
    : IConsumer<ReplicasUpdated>
{
    public async Task Consume(ConsumeContext<ReplicasUpdated> context)
    {
        var copies = context.Message.Files;
        var recorded = copies.Select(copy => recorder.RecordAsync(copy, context.CancellationToken)).ToArray();
        try
        {
            await Task.WhenAll(recorded);
        }
        catch (Exception) when (recorded.All(r => r.IsCompletedSuccessfully || r.Exception?.InnerException is UnknownRecordException))
        {
        }
        var needs = new List<ReplicaNeeded>();
        for (var i = 0; i < copies.Count; i++)
        {
            if (recorded[i].IsCompletedSuccessfully)
            {
                needs.AddRange(recorded[i].Result);
                continue;
            }
            logger.LogWarning("A copy in a list cannot be recorded ({Error}); it is sent alone to {Queue}, for its error queue",
                recorded[i].Exception!.InnerException!.Message, Queues.ReplicaUpdated);
            var copy = copies[i];
            await labels.SendAsync(bus, Queues.ReplicaUpdated, [copy], "ReplicaUpdated", context.CancellationToken);
        }
        await replicaNeeds.SendAsync(bus, needs, context.CancellationToken);
    }
}

public sealed class RecordReplicaListConsumerDefinition : ConsumerDefinition<RecordReplicaListConsumer>
{
    public RecordReplicaListConsumerDefinition()
    {
        EndpointName = Queues.ReplicaUpdated;
        // A few lists at a time fill the recorder's groups; the queue's retry is set once, by RecordReplicaConsumerDefinition.
        ConcurrentMessageLimit = 8;
    }
}

public sealed class RecordReplicaConsumerDefinition : ConsumerDefinition<RecordReplicaConsumer>
{
    public RecordReplicaConsumerDefinition()
    {
        EndpointName = Queues.ReplicaUpdated;
        // Enough single reports in hand at once for the recorder to make full groups of them.
        Endpoint(e =>
        {
            e.PrefetchCount = 400;
            e.ConcurrentMessageLimit = 200;
        });
    }

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpoint,
        IConsumerConfigurator<RecordReplicaConsumer> consumer, IRegistrationContext context)
    {
        // The queue's retry, once for every consumer on it: single reports and lists.
        endpoint.UseRetryThroughDatabaseOutages(InventoryRetry.Of(context));
        QueueLabels.Apply(endpoint, Queues.Labels(Queues.ReplicaUpdated));
    }
}
