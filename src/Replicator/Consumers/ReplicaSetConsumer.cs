using MassTransit;
using Xtelemdb.Replicator.ReplicaSet;

namespace Xtelemdb.Replicator.Consumers;

/// <summary>Each replicator hears of replicas added or removed while it runs, on a queue of its own.</summary>
public sealed class ReplicaSetConsumer(ReplicaDirectory directory, ReplicaEndpoints endpoints) : IConsumer<ReplicaAdded>, IConsumer<ReplicaRemoved>
{
    public Task Consume(ConsumeContext<ReplicaAdded> context) =>
        endpoints.ConnectAsync(directory.Add(context.Message.ReplicaUrl), context.CancellationToken);

    public async Task Consume(ConsumeContext<ReplicaRemoved> context)
    {
        directory.Remove(context.Message.ReplicaUrl);
        await endpoints.StopAsync(context.Message.ReplicaUrl, context.CancellationToken);
    }
}
