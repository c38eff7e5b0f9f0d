using MassTransit;
using Xtelemdb.Hosting;

namespace Xtelemdb.Inventory.Consumers;

/// <summary>Records what a replica now holds; if the origin moved on meanwhile, asks for it again.</summary>
public sealed class RecordReplicaConsumer(CopyRecorder recorder, ReplicaNeeds replicaNeeds) : IConsumer<ReplicaUpdated>
{
    public async Task Consume(ConsumeContext<ReplicaUpdated> context)
    {
        var needs = await recorder.RecordAsync(context.Message, context.CancellationToken);
        await replicaNeeds.SendAsync(context, needs, context.CancellationToken);
    }
}

public sealed class RecordReplicaConsumerDefinition : ConsumerDefinition<RecordReplicaConsumer>
{
    public RecordReplicaConsumerDefinition()
    {
        EndpointName = Queues.ReplicaUpdated;
        // Enough messages in hand at once for the recorder to make full groups of them.
        Endpoint(e =>
        {
            e.PrefetchCount = CopyRecorder.GroupLimit * 2;
            e.ConcurrentMessageLimit = CopyRecorder.GroupLimit;
        });
    }

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpoint,
        IConsumerConfigurator<RecordReplicaConsumer> consumer, IRegistrationContext context)
    {
        endpoint.UseMessageRetry(InventoryRetry.Configure);
        QueueLabels.Apply(endpoint, Queues.Labels(Queues.ReplicaUpdated));
    }
}
