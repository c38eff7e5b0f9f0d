using MassTransit;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Monitoring;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory.Consumers;

/// <summary>Records a batch of observations in one round trip, then asks for every copy the replicas lack.</summary>
public sealed class UpsertOriginsConsumer(InventoryStore store) : IConsumer<Batch<FileChanged>>
{
    public async Task Consume(ConsumeContext<Batch<FileChanged>> context)
    {
        // One row per file: the latest observation in the batch wins.
        var latest = context.Message
            .Select(m => m.Message)
            .GroupBy(m => (m.Host, m.Path))
            .Select(g => g.MaxBy(m => m.ObservedAt)!)
            .ToArray();
        await store.UpsertOriginsAsync(latest, context.CancellationToken);
        PipelineMetrics.OriginUpserts.Add(latest.Length);

        // Decided from the database, not from what this batch changed: a redelivered batch sends again.
        var needs = await store.NeedsOfAsync(latest.Where(m => !m.Deleted).Select(m => (m.Host, m.Path)), null, context.CancellationToken);
        await ReplicaNeeds.SendAsync(context, needs, context.CancellationToken);
    }
}

public sealed class UpsertOriginsConsumerDefinition : ConsumerDefinition<UpsertOriginsConsumer>
{
    public const int BatchLimit = 500;

    public UpsertOriginsConsumerDefinition()
    {
        EndpointName = Queues.FileChanged;
        Endpoint(e => e.PrefetchCount = BatchLimit * 2);
    }

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpoint,
        IConsumerConfigurator<UpsertOriginsConsumer> consumer, IRegistrationContext context)
    {
        endpoint.UseMessageRetry(InventoryRetry.Configure);
        consumer.Options<BatchOptions>(batch => batch
            .SetMessageLimit(BatchLimit)
            .SetTimeLimit(TimeSpan.FromMilliseconds(50))
            .SetConcurrencyLimit(2));
    }
}
