using MassTransit;
using Xtelemdb.Hosting;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory.Consumers;

/// <summary>Records what a replica now holds; if the origin moved on meanwhile, asks for it again.</summary>
public sealed class RecordReplicaConsumer(InventoryStore store) : IConsumer<ReplicaUpdated>
{
    public async Task Consume(ConsumeContext<ReplicaUpdated> context)
    {
        var copy = context.Message;
        var originMoved = await store.RecordReplicaAsync(copy, context.CancellationToken);
        // A copier that saw a newer version than the inventory's tells every replica, not only its own.
        var needs = await store.NeedsOfAsync([(copy.OriginHost, copy.OriginPath)], originMoved ? null : copy.ReplicaId, context.CancellationToken);
        await ReplicaNeeds.SendAsync(context, needs, context.CancellationToken);
    }
}

public sealed class RecordReplicaConsumerDefinition : ConsumerDefinition<RecordReplicaConsumer>
{
    public RecordReplicaConsumerDefinition() => EndpointName = Queues.ReplicaUpdated;

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpoint,
        IConsumerConfigurator<RecordReplicaConsumer> consumer, IRegistrationContext context) =>
        endpoint.UseMessageRetry(InventoryRetry.Configure);
}
