using MassTransit;
using Xtelemdb.Replicator.ReplicaSet;

namespace Xtelemdb.Replicator.Consumers;

/// <summary>Each replicator hears of replicas added, changed or removed while it runs, on a queue of its own.</summary>
public sealed class ReplicaSetConsumer(ReplicaSetLoader loader) : IConsumer<ReplicaAdded>, IConsumer<ReplicaRemoved>
{
    public Task Consume(ConsumeContext<ReplicaAdded> context) => loader.RefreshAsync(context.CancellationToken);

    public Task Consume(ConsumeContext<ReplicaRemoved> context) => loader.RefreshAsync(context.CancellationToken);
}
