using System.Collections.Concurrent;
using MassTransit;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.Consumers;
using Xtelemdb.Replicator.Copying;

namespace Xtelemdb.Replicator.ReplicaSet;

/// <summary>Connects and stops, while the bus runs, the queue of (this host, replica) for each replica.</summary>
public sealed class ReplicaEndpoints(XtelemdbSettings settings, IReceiveEndpointConnector connector, ILogger<ReplicaEndpoints> logger)
{
    readonly ConcurrentDictionary<string, Lazy<HostReceiveEndpointHandle>> handles = new(StringComparer.Ordinal);

    public async Task ConnectAsync(ReplicaSettings replica, CancellationToken cancellationToken)
    {
        var queue = Queues.Replicate(settings.Host, replica.Url);
        var handle = handles.GetOrAdd(queue, name => new Lazy<HostReceiveEndpointHandle>(() =>
            connector.ConnectReceiveEndpoint(name, (context, endpoint) =>
            {
                var concurrency = replica.Ssh?.Concurrency ?? settings.Replicator.Concurrency;
                CopyThreads.Reserve(concurrency);
                endpoint.ConcurrentMessageLimit = concurrency;
                endpoint.PrefetchCount = concurrency * 2;
                endpoint.ConfigureConsumer<CopyFileConsumer>(context);
            })));
        if (!handle.IsValueCreated)
            logger.LogInformation("Copying to {Replica} from queue {Queue}", replica.Url, queue);
        await handle.Value.Ready.WaitAsync(cancellationToken);
    }

    public async Task StopAsync(string replicaUrl, CancellationToken cancellationToken)
    {
        var queue = Queues.Replicate(settings.Host, ReplicaUrls.Normalize(replicaUrl));
        if (handles.TryRemove(queue, out var handle) && handle.IsValueCreated)
        {
            await handle.Value.StopAsync(cancellationToken);
            logger.LogInformation("Stopped copying to {Replica}; queue {Queue} keeps what it holds", replicaUrl, queue);
        }
    }
}
