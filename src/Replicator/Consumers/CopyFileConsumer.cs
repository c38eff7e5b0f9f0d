using MassTransit;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Replicator.Copying;

namespace Xtelemdb.Replicator.Consumers;

/// <summary>Copies an origin file to a replica and reports the version the replica now holds.</summary>
public sealed class CopyFileConsumer(ReplicaCopier copier, ILogger<CopyFileConsumer> logger) : IConsumer<ReplicaNeeded>
{
    public async Task Consume(ConsumeContext<ReplicaNeeded> context)
    {
        var need = context.Message;
        var (result, target) = await copier.CopyAsync(need, context.CancellationToken, context.ReceiveContext.ElapsedTime);
        switch (result.Outcome)
        {
            case CopyOutcome.SourceMissing:
                logger.LogInformation("{Host}:{Path} is gone; nothing to copy to {Replica}", need.OriginHost, need.OriginPath, need.ReplicaUrl);
                return;
            case CopyOutcome.SourceChanging:
                logger.LogWarning("{Host}:{Path} kept changing while it was copied; the next change asks again", need.OriginHost, need.OriginPath);
                return;
            case CopyOutcome.NotSelected:
                logger.LogInformation("{Host}:{Path} is no longer selected by {Replica}; not copied", need.OriginHost, need.OriginPath, need.ReplicaUrl);
                return;
        }
        var inventory = await context.GetSendEndpoint(new Uri($"queue:{Queues.ReplicaUpdated}"));
        var update = new ReplicaUpdated
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
        await ConfirmedSend.RunAsync(token => inventory.Send(update, token), "ReplicaUpdated", context.CancellationToken);
    }
}

public sealed class CopyFileConsumerDefinition : ConsumerDefinition<CopyFileConsumer>
{
    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpoint,
        IConsumerConfigurator<CopyFileConsumer> consumer, IRegistrationContext context) =>
        endpoint.UseMessageRetry(retry =>
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
