using MassTransit;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.Copying;
using Xtelemdb.Replicator.ReplicaSet;
using Xtelemdb.Storage;

namespace Xtelemdb.Replicator.Consumers;

/// <summary>Copies an origin file to a replica and reports the version the replica now holds.</summary>
public sealed class CopyFileConsumer(ReplicaCopier copier, CopySlots slots, IBus bus, QueueLabels labels, ILogger<CopyFileConsumer> logger) : IConsumer<ReplicaNeeded>
{
    public async Task Consume(ConsumeContext<ReplicaNeeded> context)
    {
        ReplicaUpdated? update;
        using (await slots.AcquireAsync(context.ReceiveContext.InputAddress, context.CancellationToken))
            update = await CopyAsync(copier, logger, context.Message, context.ReceiveContext.ElapsedTime, context.CancellationToken);
        if (update is not null)
            await ReportAsync(bus, labels, [update], context.CancellationToken);
    }

    /// <summary>Copies one file; returns the report for the inventory, or null where there is nothing to record.</summary>
    internal static async Task<ReplicaUpdated?> CopyAsync(ReplicaCopier copier, ILogger logger, ReplicaNeeded need, TimeSpan spent, CancellationToken cancellationToken)
    {
        var (result, target) = await copier.CopyAsync(need, cancellationToken, spent);
        switch (result.Outcome)
        {
            case CopyOutcome.SourceMissing:
                logger.LogInformation("{Host}:{Path} is gone; nothing to copy to {Replica}", need.OriginHost, need.OriginPath, need.ReplicaUrl);
                return null;
            case CopyOutcome.SourceChanging:
                logger.LogWarning("{Host}:{Path} kept changing while it was copied; the next change asks again", need.OriginHost, need.OriginPath);
                return null;
            case CopyOutcome.NotSelected:
                logger.LogInformation("{Host}:{Path} is no longer selected by {Replica}; not copied", need.OriginHost, need.OriginPath, need.ReplicaUrl);
                return null;
        }
        return new ReplicaUpdated
        {
            ReplicaId = need.ReplicaId,
            OriginHost = need.OriginHost,
            OriginPath = need.OriginPath,
            Mtime = result.Version.Mtime,
            Size = result.Version.Size,
            ReplicaPath = target,
            Checksum = result.Checksum,
            CopiedAt = result.StatedAt,
            MovedFrom = result.MovedFrom,
        };
    }

    /// <summary>
    /// Reports copies to the inventory, through the bus, not the delivery: a send made through a
    /// ConsumeContext is also awaited by MassTransit when the delivery completes, and one that
    /// ConfirmedSend gave up on (a connection lost while the copy ran: a host cut off from the
    /// broker, an SFTP copy waiting out the link) then fails the delivery long after, moving the
    /// request to the error queue for a copy that is made and reported. One copy alone, several as a list.
    /// </summary>
    internal static async Task ReportAsync(IBus bus, QueueLabels labels, IReadOnlyList<ReplicaUpdated> updates, CancellationToken cancellationToken)
    {
        if (updates.Count == 1)
            await labels.SendAsync(bus, Queues.ReplicaUpdated, updates, "ReplicaUpdated", cancellationToken);
        else if (updates.Count > 1)
            await labels.SendAsync(bus, Queues.ReplicaUpdated, [new ReplicasUpdated { Files = updates }], "ReplicasUpdated", cancellationToken);
    }
}

/// <summary>
/// Copies a list of files together, so that a local replica makes them durable as a group (one
/// flush for many: see FlushGroup), then reports them in one list. A file that fails is sent back
/// to the queue alone, where it is retried and, failing for good, lands in the error queue by itself.
/// </summary>
public sealed class CopyFilesConsumer(ReplicaCopier copier, CopySlots slots, IBus bus, QueueLabels labels, ILogger<CopyFilesConsumer> logger) : IConsumer<ReplicasNeeded>
{
    const int LocalFilesAtOnce = 64;

    public async Task Consume(ConsumeContext<ReplicasNeeded> context)
    {
        var outcomes = await Task.WhenAll(context.Message.Files.Select(need => Task.Run(async () =>
        {
            using (await slots.AcquireAsync(context.ReceiveContext.InputAddress, context.CancellationToken))
                return await CopyOrSendAloneAsync(context, need);
        })));
        await CopyFileConsumer.ReportAsync(bus, labels, outcomes.OfType<ReplicaUpdated>().ToArray(), context.CancellationToken);
    }

    /// <summary>
    /// Copies in flight at once on a queue: its concurrency over SFTP, where each copy holds a handle
    /// on the server; on a local replica at least 64, as copies there wait for their group's flush,
    /// not on the disk or a thread.
    /// </summary>
    public static int FilesAtOnce(ReplicaSettings replica, XtelemdbSettings settings)
    {
        var concurrency = replica.CopiesAtOnce(settings.Host, settings.Replicator);
        return replica.OverSftpFrom(settings.Host) ? concurrency : Math.Max(LocalFilesAtOnce, concurrency);
    }

    async Task<ReplicaUpdated?> CopyOrSendAloneAsync(ConsumeContext context, ReplicaNeeded need)
    {
        try
        {
            return await CopyFileConsumer.CopyAsync(copier, logger, need, context.ReceiveContext.ElapsedTime, context.CancellationToken);
        }
        catch (Exception e) when (!context.CancellationToken.IsCancellationRequested)
        {
            logger.LogInformation("{Host}:{Path} was not copied to {Replica} with its list ({Error}); it is sent alone to {Queue}, to be retried there",
                need.OriginHost, need.OriginPath, need.ReplicaUrl, e.Message, context.ReceiveContext.InputAddress);
            await labels.SendAsync(bus, context.ReceiveContext.InputAddress.AbsolutePath.Split('/')[^1], [need], "ReplicaNeeded", context.CancellationToken);
            return null;
        }
    }
}

/// <summary>Two lists of a queue at a time: the next one's files take the slots the first one's free as they finish.</summary>
public sealed class CopyFilesConsumerDefinition : ConsumerDefinition<CopyFilesConsumer>
{
    public CopyFilesConsumerDefinition() => ConcurrentMessageLimit = 2;
}

public sealed class CopyFileConsumerDefinition : ConsumerDefinition<CopyFileConsumer>
{
    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpoint,
        IConsumerConfigurator<CopyFileConsumer> consumer, IRegistrationContext context) =>
        // The queue's retry, once for every consumer on it: single requests and lists (whose failed files come back alone).
        // A copy asks the database little (a deselected file, an SFTP quick check, a move), but waits it out like the inventory.
        endpoint.UseRetryThroughDatabaseOutages(retry =>
        {
            // A locked file or a busy disk clears up; a full disk goes straight to the error queue
            // (then: make room, and resync), so the requests behind it still reach the other files.
            retry.Exponential(6, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(1));
            retry.Ignore<UnknownReplicaException>();
            retry.Ignore<UnsafePathException>();
            retry.Ignore<ReplicaFullException>();
            retry.Ignore<ReplicaUnavailableException>();
            retry.Ignore<NotRegularFileException>();
            retry.Ignore<CopyTimeoutException>();
            // An unknown host key or a refused login waits for the operator, not for time.
            retry.Ignore<Sftp.SshReplicaException>();
        });
}
