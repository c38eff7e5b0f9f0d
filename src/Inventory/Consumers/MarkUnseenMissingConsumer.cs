using MassTransit;
using Microsoft.Extensions.Logging;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory.Consumers;

/// <summary>After a watcher's start-up scan: files it no longer has were deleted while it was down.</summary>
public sealed class MarkUnseenMissingConsumer(InventoryStore store, ILogger<MarkUnseenMissingConsumer> logger) : IConsumer<ScanCompleted>
{
    public async Task Consume(ConsumeContext<ScanCompleted> context)
    {
        var scan = context.Message;
        var missing = await store.MarkUnseenMissingAsync(scan, context.CancellationToken);
        if (missing > 0)
            logger.LogInformation("{Host}: {Missing} files under {Roots} were gone at its scan of {StartedAt:O}; marked missing, their replicas kept",
                scan.Host, missing, string.Join(", ", scan.Roots), scan.StartedAt);
    }
}

/// <summary>On the watcher's queue, behind the scan's own FileChanged messages.</summary>
public sealed class MarkUnseenMissingConsumerDefinition : ConsumerDefinition<MarkUnseenMissingConsumer>
{
    /// <remarks>Retried by the queue's retry, which UpsertOriginsConsumerDefinition sets.</remarks>
    public MarkUnseenMissingConsumerDefinition() => EndpointName = Queues.FileChanged;
}
