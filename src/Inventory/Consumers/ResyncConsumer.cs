using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Monitoring;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory.Consumers;

/// <summary>
/// Rebuilds the backlog from the database: every copy a replica lacks is asked for again. Each
/// resync is answered in resync-results (<see cref="ResyncAnswers"/>): here when its copies are
/// requested, by the queue's error pipe when it is refused.
/// </summary>
public sealed class ResyncConsumer(InventoryStore store, ReplicaNeeds replicaNeeds, ResyncAnswers answers, IBus bus, ILogger<ResyncConsumer> logger)
    : IConsumer<ResyncRequested>
{
    static readonly string[] Fields = ["replica", "originHost", "pathPrefix"];

    public async Task Consume(ConsumeContext<ResyncRequested> context)
    {
        var request = context.Message;
        CheckFields(context.ReceiveContext);
        ReplicaRecord? replica = null;
        if (request.Replica is { Length: > 0 } name)
            replica = await FindAsync(name, context.CancellationToken);
        var backlog = store.BacklogAsync(replica?.Id, NullIfEmpty(request.OriginHost), NullIfEmpty(request.PathPrefix), context.CancellationToken);
        // Through the bus, not the delivery (see OriginRecorder): a send given up on must not fail a resync already answered.
        var sent = await replicaNeeds.SendAllAsync(bus, backlog, context.CancellationToken);
        logger.LogInformation("Resync {@Request}: {Count} copies requested", request, sent);
        await answers.SendAsync(context.ReceiveContext, new ResyncCompleted
        {
            Outcome = ResyncCompleted.Requested,
            Request = ResyncAnswers.BodyOf(context.ReceiveContext),
            Replica = replica?.Name,
            OriginHost = NullIfEmpty(request.OriginHost),
            PathPrefix = NullIfEmpty(request.PathPrefix),
            CopiesRequested = sent,
            At = DateTime.UtcNow,
        }, context.CancellationToken);
        PipelineMetrics.ResyncCopiesRequested.Add(sent);
    }

    /// <summary>The replica as registered; a relative name that fits one replica is understood, anything else refused with the names that would have matched.</summary>
    async Task<ReplicaRecord> FindAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            if (await store.FindReplicaAsync(name, thisHost: null, cancellationToken) is { } replica)
                return replica;
        }
        catch (AmbiguousReplicaException e)
        {
            throw new UnknownRecordException($"ResyncRequested: {e.Message}");
        }
        var registered = await store.ReplicasAsync(cancellationToken);
        var near = ReplicaSpellings.Near(name, registered);
        if (near.Count == 1 && ReplicaSpellings.IsRelative(name))
        {
            logger.LogInformation("Resync: replica \"{Name}\" understood as {Replica}", name, near[0].Name);
            return near[0];
        }
        var hint = near.Count > 0
            ? $"did you mean {string.Join(" or ", near.Select(r => $"\"{r.Name}\""))}?"
            : registered.Count == 0 ? "no replica is registered (xtelemdb add_replica)"
            : $"the registered replicas are {string.Join(", ", registered.Take(10).Select(r => $"\"{r.Name}\""))}{(registered.Count > 10 ? ", …" : "")}";
        throw new UnknownRecordException($"ResyncRequested names replica \"{name}\", which is not registered; {hint}");
    }

    /// <summary>
    /// A field spelt otherwise ("host", "prefix") would be ignored and the resync widened to everything:
    /// a plain JSON body from the management UI names only the fields a resync has.
    /// </summary>
    static void CheckFields(ReceiveContext receive)
    {
        if (receive.ContentType?.MediaType?.Contains("masstransit", StringComparison.OrdinalIgnoreCase) == true)
            return;
        using var body = JsonDocument.Parse(receive.Body.GetBytes());
        if (body.RootElement.ValueKind != JsonValueKind.Object)
            throw new UnknownRecordException($"a resync is a JSON object such as {{\"replica\": \"exao1:/mnt/backup\"}}, not a {body.RootElement.ValueKind.ToString().ToLowerInvariant()}");
        foreach (var field in body.RootElement.EnumerateObject())
        {
            if (!Fields.Contains(field.Name, StringComparer.OrdinalIgnoreCase))
                throw new UnknownRecordException($"a resync has no field \"{field.Name}\": its fields are {string.Join(", ", Fields)} (each optional)");
            if (field.Value.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
                throw new UnknownRecordException($"a resync's field \"{field.Name}\" is text, not {field.Value.ValueKind.ToString().ToLowerInvariant()}");
        }
    }

    static string? NullIfEmpty(string? text) => string.IsNullOrEmpty(text) ? null : text;
}

public sealed class ResyncConsumerDefinition : ConsumerDefinition<ResyncConsumer>
{
    public ResyncConsumerDefinition() => EndpointName = Queues.ResyncRequested;

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpoint,
        IConsumerConfigurator<ResyncConsumer> consumer, IRegistrationContext context)
    {
        // Operators publish this from the management UI as plain JSON, without MassTransit's envelope.
        endpoint.UseRawJsonDeserializer(RawSerializerOptions.AnyMessageType, isDefault: true);
        endpoint.UseRetryThroughDatabaseOutages(InventoryRetry.Of(context));
        QueueLabels.Apply(endpoint, Queues.Labels(Queues.ResyncRequested));
        // A refused resync (not JSON, an unknown replica, retries spent) is moved to the error queue as
        // usual, then answered: the operator reads why in resync-results, not only in a header.
        var answers = context.GetRequiredService<ResyncAnswers>();
        endpoint.ConfigureError(error =>
        {
            error.UseFilter(new MassTransit.Middleware.GenerateFaultFilter());
            error.UseFilter(new MassTransit.Middleware.ErrorTransportFilter());
            error.UseFilter(new ResyncAnswers.RefusalFilter(answers));
        });
    }
}
