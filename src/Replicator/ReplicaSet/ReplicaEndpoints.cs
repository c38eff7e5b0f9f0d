using System.Collections.Concurrent;
using MassTransit;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.Consumers;
using Xtelemdb.Replicator.Copying;

namespace Xtelemdb.Replicator.ReplicaSet;

/// <summary>
/// Connects and stops, while the bus runs, the queue of each (origin host, replica) pair this
/// replicator serves: an origin host whose files it reads (its own, or mounted) that the replica
/// selects, and a replica it writes.
/// </summary>
public sealed class ReplicaEndpoints(XtelemdbSettings settings, IReceiveEndpointConnector connector, CopySlots slots, QueueLabels labels, ILogger<ReplicaEndpoints> logger)
{
    readonly ConcurrentDictionary<string, HostReceiveEndpointHandle> handles = new(StringComparer.Ordinal);

    /// <summary>The queues connected now.</summary>
    public IReadOnlyCollection<string> Queues => handles.Keys.ToArray();

    /// <summary>Connects the queues of these replicas' pairs and stops every other; called one at a time.</summary>
    public async Task ServeAsync(IReadOnlyDictionary<int, ReplicaSettings> replicas, CancellationToken cancellationToken)
    {
        var wanted = new Dictionary<string, (ReplicaSettings Replica, string Origin)>(StringComparer.Ordinal);
        foreach (var replica in replicas.Values)
        {
            foreach (var origin in settings.ReadableHosts.Where(replica.Selection.SelectsHost))
                wanted[Xtelemdb.Queues.Replicate(origin, replica.Name)] = (replica, origin);
        }
        foreach (var queue in handles.Keys.Where(q => !wanted.ContainsKey(q)).ToArray())
        {
            if (handles.TryRemove(queue, out var handle))
            {
                await handle.StopAsync(cancellationToken);
                logger.LogInformation("Stopped serving queue {Queue}; it keeps what it holds", queue);
            }
        }
        foreach (var (queue, (replica, origin)) in wanted.Where(w => !handles.ContainsKey(w.Key)))
        {
            var concurrency = replica.CopiesAtOnce(settings.Host, settings.Replicator);
            var filesAtOnce = CopyFilesConsumer.FilesAtOnce(replica, settings);
            slots.Set(queue, filesAtOnce);
            // A local copy holds a thread while it copies; an SFTP copy awaits its replies (its sessions reserve
            // the threads they hold) and holds one only to read and hash its source here, a few at a time.
            var threads = replica.OverSftpFrom(settings.Host) ? Math.Min(concurrency, 8) : filesAtOnce;
            // Declared first: a queue of the other type stops the service here, where the bus would retry it for ever.
            await labels.EnsureAsync([(queue, Xtelemdb.Queues.ReplicateLabels(origin, replica.Name))], cancellationToken);
            var handle = connector.ConnectReceiveEndpoint(queue, (context, endpoint) =>
            {
                CopyThreads.Reserve(threads);
                endpoint.ConcurrentMessageLimit = concurrency;
                // Few deliveries wait unacknowledged behind a copy: single requests are each in a copy at once (bounded by
                // copy_timeout); of the lists, two are copied at a time and the others wait for them.
                endpoint.PrefetchCount = concurrency;
                QueueLabels.Apply(endpoint, Xtelemdb.Queues.ReplicateLabels(origin, replica.Name));
                endpoint.ConfigureConsumer<CopyFileConsumer>(context);
                endpoint.ConfigureConsumer<CopyFilesConsumer>(context);
            });
            handles[queue] = handle;
            await handle.Ready.WaitAsync(cancellationToken);
            logger.LogInformation("Copying {Origin}'s files to {Replica} from queue {Queue}", origin, replica.Name, queue);
        }
    }
}
