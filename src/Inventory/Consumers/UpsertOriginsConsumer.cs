using MassTransit;
using Xtelemdb.Hosting;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory.Consumers;

/// <summary>Records a batch of FileChanged messages in one round trip, then asks for every copy the replicas lack.</summary>
public sealed class UpsertOriginsConsumer(OriginRecorder recorder) : IConsumer<Batch<FileChanged>>
{
    public Task Consume(ConsumeContext<Batch<FileChanged>> context) =>
        recorder.RecordAsync(context.Message.Select(m => m.Message), context.CancellationToken);
}

/// <summary>The same for a watcher's list of observations, which comes batched already.</summary>
public sealed class UpsertOriginListConsumer(OriginRecorder recorder) : IConsumer<FilesChanged>
{
    public Task Consume(ConsumeContext<FilesChanged> context) =>
        recorder.RecordAsync(context.Message.Files, context.CancellationToken);
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
        endpoint.UseRetryThroughDatabaseOutages(InventoryRetry.Of(context));
        QueueLabels.Apply(endpoint, Queues.Labels(Queues.FileChanged));
        consumer.Options<BatchOptions>(batch => batch
            .SetMessageLimit(BatchLimit)
            .SetTimeLimit(TimeSpan.FromMilliseconds(50))
            .SetConcurrencyLimit(2));
    }
}
