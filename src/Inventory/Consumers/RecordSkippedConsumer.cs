using MassTransit;
using Microsoft.Extensions.Logging;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory.Consumers;

/// <summary>Keeps each watcher's list of what it does not back up, for verify (nothing is skipped in silence).</summary>
public sealed class RecordSkippedConsumer(InventoryStore store, ILogger<RecordSkippedConsumer> logger) : IConsumer<FilesSkipped>
{
    public async Task Consume(ConsumeContext<FilesSkipped> context)
    {
        var skipped = context.Message;
        await store.RecordSkippedAsync(skipped, context.CancellationToken);
        logger.LogInformation("{Host}: {Count} entries under {Roots} are not backed up (verify lists them)",
            skipped.Host, skipped.Files.Count, string.Join(", ", skipped.Roots));
    }
}

/// <summary>On the watcher's queue, in order with its FileChanged messages.</summary>
public sealed class RecordSkippedConsumerDefinition : ConsumerDefinition<RecordSkippedConsumer>
{
    /// <remarks>Retried by the queue's retry, which UpsertOriginsConsumerDefinition sets.</remarks>
    public RecordSkippedConsumerDefinition() => EndpointName = Queues.FileChanged;
}
