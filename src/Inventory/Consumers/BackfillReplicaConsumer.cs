using MassTransit;
using Xtelemdb.Hosting;
using Microsoft.Extensions.Logging;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory.Consumers;

/// <summary>A new replica starts empty: ask for every present origin file.</summary>
public sealed class BackfillReplicaConsumer(InventoryStore store, ReplicaNeeds replicaNeeds, IBus bus, ILogger<BackfillReplicaConsumer> logger) : IConsumer<ReplicaAdded>
{
    public async Task Consume(ConsumeContext<ReplicaAdded> context)
    {
        var replica = context.Message;
        var backlog = store.BacklogAsync(replica.ReplicaId, null, null, context.CancellationToken);
        // Through the bus, not the delivery, as OriginRecorder sends.
        var sent = await replicaNeeds.SendAllAsync(bus, backlog, context.CancellationToken);
        logger.LogInformation("Replica {Url} added: {Count} copies requested", replica.ReplicaUrl, sent);
    }
}

public sealed class BackfillReplicaConsumerDefinition : ConsumerDefinition<BackfillReplicaConsumer>
{
    public BackfillReplicaConsumerDefinition() => EndpointName = Queues.BackfillReplica;

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpoint,
        IConsumerConfigurator<BackfillReplicaConsumer> consumer, IRegistrationContext context)
    {
        endpoint.UseRetryThroughDatabaseOutages(InventoryRetry.Of(context));
        QueueLabels.Apply(endpoint, Queues.Labels(Queues.BackfillReplica));
    }
}
