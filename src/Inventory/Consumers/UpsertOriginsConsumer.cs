using MassTransit;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Monitoring;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory.Consumers;

/// <summary>Records a batch of FileChanged messages in one round trip, then asks for every copy the replicas lack.</summary>
public sealed class UpsertOriginsConsumer(InventoryStore store, ReplicaNeeds replicaNeeds) : IConsumer<Batch<FileChanged>>
{
    public Task Consume(ConsumeContext<Batch<FileChanged>> context) =>
        UpsertAsync(store, replicaNeeds, context, context.Message.Select(m => m.Message), context.CancellationToken);

    internal static async Task UpsertAsync(InventoryStore store, ReplicaNeeds replicaNeeds, ISendEndpointProvider sender, IEnumerable<FileChanged> changes, CancellationToken cancellationToken)
    {
        // One row per file: the latest observation wins. In one order everywhere: two lists naming the
        // same new files (a day folder's scan, and the renames into it) then never deadlock on their rows.
        var latest = changes
            .GroupBy(m => (m.Host, m.Path))
            .Select(g => g.MaxBy(m => m.ObservedAt)!)
            .OrderBy(m => m.Host, StringComparer.Ordinal).ThenBy(m => m.Path, StringComparer.Ordinal)
            .ToArray();
        await store.UpsertOriginsAsync(latest, cancellationToken);
        PipelineMetrics.OriginUpserts.Add(latest.Length);

        // Decided from the database, not from what this batch changed: a redelivered batch sends again.
        // A file that appeared as another of its name and version vanished is a move: renamed on the replicas that hold it.
        var needs = await store.NeedsOrMovesOfAsync(latest.Where(m => !m.Deleted).Select(m => (m.Host, m.Path)), cancellationToken);
        await replicaNeeds.SendAsync(sender, needs, cancellationToken);
    }
}

/// <summary>The same for a watcher's list of observations, which comes batched already.</summary>
public sealed class UpsertOriginListConsumer(InventoryStore store, ReplicaNeeds replicaNeeds) : IConsumer<FilesChanged>
{
    public Task Consume(ConsumeContext<FilesChanged> context) =>
        UpsertOriginsConsumer.UpsertAsync(store, replicaNeeds, context, context.Message.Files, context.CancellationToken);
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
        // Four lists at a time: the database, not the broker, is the bound once observations come in lists.
        ConcurrentMessageLimit = 4;
    }
}

public sealed class UpsertOriginsConsumerDefinition : ConsumerDefinition<UpsertOriginsConsumer>
{
    /// <summary>
    /// Single messages are bound by the broker, not the batch size (5-6k/s at 50 or 500). The
    /// prefetch it sets also holds up to 100 of the watcher's lists in memory: at 1,000 the
    /// inventory stayed at 375 MB resident after draining 500,000 observations, at 100 at 186 MB.
    /// </summary>
    public const int BatchLimit = 50;

    public UpsertOriginsConsumerDefinition()
    {
        EndpointName = Queues.FileChanged;
        Endpoint(e => e.PrefetchCount = BatchLimit * 2);
    }

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpoint,
        IConsumerConfigurator<UpsertOriginsConsumer> consumer, IRegistrationContext context)
    {
        // The queue's retry, once for every consumer on it: lists, single observations, ScanCompleted.
        endpoint.UseRetryThroughDatabaseOutages(InventoryRetry.Configure);
        QueueLabels.Apply(endpoint, Queues.Labels(Queues.FileChanged));
        consumer.Options<BatchOptions>(batch => batch
            .SetMessageLimit(BatchLimit)
            .SetTimeLimit(TimeSpan.FromMilliseconds(50))
            .SetConcurrencyLimit(2));
    }
}
