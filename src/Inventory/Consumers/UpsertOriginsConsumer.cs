using MassTransit;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Monitoring;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory.Consumers;

/// <summary>Records a batch of FileChanged messages in one round trip, then asks for every copy the replicas lack.</summary>
public sealed class UpsertOriginsConsumer(InventoryStore store) : IConsumer<Batch<FileChanged>>
{
    public Task Consume(ConsumeContext<Batch<FileChanged>> context) =>
        UpsertAsync(store, context, context.Message.Select(m => m.Message), context.CancellationToken);

    internal static async Task UpsertAsync(InventoryStore store, ISendEndpointProvider sender, IEnumerable<FileChanged> changes, CancellationToken cancellationToken)
    {
        // One row per file: the latest observation wins.
        var latest = changes
            .GroupBy(m => (m.Host, m.Path))
            .Select(g => g.MaxBy(m => m.ObservedAt)!)
            .ToArray();
        await store.UpsertOriginsAsync(latest, cancellationToken);
        PipelineMetrics.OriginUpserts.Add(latest.Length);

        // Decided from the database, not from what this batch changed: a redelivered batch sends again.
        var needs = await store.NeedsOfAsync(latest.Where(m => !m.Deleted).Select(m => (m.Host, m.Path)), null, cancellationToken);
        await ReplicaNeeds.SendAsync(sender, needs, cancellationToken);
    }
}

/// <summary>The same for a watcher's list of observations, which comes batched already.</summary>
public sealed class UpsertOriginListConsumer(InventoryStore store) : IConsumer<FilesChanged>
{
    public Task Consume(ConsumeContext<FilesChanged> context) =>
        UpsertOriginsConsumer.UpsertAsync(store, context, context.Message.Files, context.CancellationToken);
}

/// <summary>
/// On the watcher's queue, beside single FileChanged messages (which operators and other tools may
/// send); retried by the queue's retry, which UpsertOriginsConsumerDefinition sets.
/// </summary>
public sealed class UpsertOriginListConsumerDefinition : ConsumerDefinition<UpsertOriginListConsumer>
{
    public UpsertOriginListConsumerDefinition()
    {
        EndpointName = Queues.FileChanged;
        // Two lists at a time: the database, not the broker, is the bound once observations come in lists.
        ConcurrentMessageLimit = 4;
    }
}

public sealed class UpsertOriginsConsumerDefinition : ConsumerDefinition<UpsertOriginsConsumer>
{
    public const int BatchLimit = 250;

    public UpsertOriginsConsumerDefinition()
    {
        EndpointName = Queues.FileChanged;
        Endpoint(e => e.PrefetchCount = BatchLimit * 2);
    }

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpoint,
        IConsumerConfigurator<UpsertOriginsConsumer> consumer, IRegistrationContext context)
    {
        // The queue's retry, once for every consumer on it: lists, single observations, ScanCompleted.
        endpoint.UseMessageRetry(InventoryRetry.Configure);
        consumer.Options<BatchOptions>(batch => batch
            .SetMessageLimit(BatchLimit)
            .SetTimeLimit(TimeSpan.FromMilliseconds(50))
            .SetConcurrencyLimit(2));
    }
}
