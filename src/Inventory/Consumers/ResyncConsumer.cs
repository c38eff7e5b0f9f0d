using MassTransit;
using Xtelemdb.Hosting;
using Microsoft.Extensions.Logging;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory.Consumers;

/// <summary>Rebuilds the backlog from the database: every copy a replica lacks is asked for again.</summary>
public sealed class ResyncConsumer(InventoryStore store, ILogger<ResyncConsumer> logger) : IConsumer<ResyncRequested>
{
    public async Task Consume(ConsumeContext<ResyncRequested> context)
    {
        var request = context.Message;
        int? replicaId = null;
        if (request.Replica is { Length: > 0 } url)
        {
            ReplicaRecord? replica;
            try
            {
                replica = await store.FindReplicaAsync(url, thisHost: null, context.CancellationToken);
            }
            catch (AmbiguousReplicaException e)
            {
                throw new UnknownRecordException($"ResyncRequested: {e.Message}");
            }
            if (replica is null)
                throw new UnknownRecordException($"ResyncRequested names replica \"{url}\", which is not registered");
            replicaId = replica.Id;
        }
        var backlog = store.BacklogAsync(replicaId, NullIfEmpty(request.OriginHost), NullIfEmpty(request.PathPrefix), context.CancellationToken);
        var sent = await ReplicaNeeds.SendAllAsync(context, backlog, context.CancellationToken);
        logger.LogInformation("Resync {@Request}: {Count} copies requested", request, sent);
    }

    static string? NullIfEmpty(string? text) => string.IsNullOrEmpty(text) ? null : text;
}

public sealed class ResyncConsumerDefinition : ConsumerDefinition<ResyncConsumer>
{
    public ResyncConsumerDefinition() => EndpointName = "resync-requested";

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpoint,
        IConsumerConfigurator<ResyncConsumer> consumer, IRegistrationContext context)
    {
        // Operators publish this from the management UI as plain JSON, without MassTransit's envelope.
        endpoint.UseRawJsonDeserializer(RawSerializerOptions.AnyMessageType, isDefault: true);
        endpoint.UseMessageRetry(InventoryRetry.Configure);
    }
}
