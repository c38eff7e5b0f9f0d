using MassTransit;

namespace Xtelemdb.Hosting;

/// <summary>
/// Sends ReplicaNeeded to the queue of each (origin host, replica) pair: several to one queue go
/// as ReplicasNeeded lists, bounded in files and bytes; a file alone goes as a single ReplicaNeeded.
/// </summary>
public sealed class ReplicaNeeds(QueueLabels labels)
{
    const int BatchSize = 1000;

    public async Task SendAsync(ISendEndpointProvider provider, IEnumerable<ReplicaNeeded> needs, CancellationToken cancellationToken)
    {
        var queues = needs.GroupBy(n => Queues.Replicate(n.OriginHost, n.ReplicaUrl)).ToArray();
        await labels.EnsureAsync(queues.Select(q => (q.Key, Queues.ReplicateLabels(q.First().OriginHost, q.First().ReplicaUrl))), cancellationToken);
        foreach (var queue in queues)
        {
            var lists = Lists(queue).ToArray();
            var singles = lists.Where(l => l.Count == 1).Select(l => l[0]).ToArray();
            var many = lists.Where(l => l.Count > 1).Select(l => new ReplicasNeeded { Files = l }).ToArray();
            await labels.SendAsync(provider, queue.Key, singles, $"ReplicaNeeded to {queue.Key}", cancellationToken);
            await labels.SendAsync(provider, queue.Key, many, $"ReplicasNeeded to {queue.Key}", cancellationToken);
        }
    }

    /// <summary>In order, lists of at most MaxFiles and MaxBytes; a file larger than MaxBytes alone.</summary>
    public static IEnumerable<IReadOnlyList<ReplicaNeeded>> Lists(IEnumerable<ReplicaNeeded> needs)
    {
        var list = new List<ReplicaNeeded>();
        long bytes = 0;
        foreach (var need in needs)
        {
            if (list.Count > 0 && (list.Count == ReplicasNeeded.MaxFiles || bytes + need.Size > ReplicasNeeded.MaxBytes))
            {
                yield return list;
                (list, bytes) = ([], 0);
            }
            list.Add(need);
            bytes += need.Size;
        }
        if (list.Count > 0)
            yield return list;
    }

    /// <summary>Sends a streamed backlog a batch at a time; returns how many were sent.</summary>
    public async Task<long> SendAllAsync(ISendEndpointProvider provider, IAsyncEnumerable<ReplicaNeeded> backlog, CancellationToken cancellationToken)
    {
        long sent = 0;
        var batch = new List<ReplicaNeeded>(BatchSize);
        await foreach (var need in backlog)
        {
            batch.Add(need);
            if (batch.Count < BatchSize)
                continue;
            await SendAsync(provider, batch, cancellationToken);
            sent += batch.Count;
            batch.Clear();
        }
        await SendAsync(provider, batch, cancellationToken);
        return sent + batch.Count;
    }
}
