using MassTransit;

namespace Xtelemdb.Hosting;

/// <summary>Sends ReplicaNeeded to the queue of each (origin host, replica) pair, in batches.</summary>
public sealed class ReplicaNeeds(QueueLabels labels)
{
    const int BatchSize = 1000;

    public async Task SendAsync(ISendEndpointProvider provider, IEnumerable<ReplicaNeeded> needs, CancellationToken cancellationToken)
    {
        var queues = needs.GroupBy(n => Queues.Replicate(n.OriginHost, n.ReplicaUrl)).ToArray();
        await labels.EnsureAsync(queues.Select(q => (q.Key, Queues.ReplicateLabels(q.First().OriginHost, q.First().ReplicaUrl))), cancellationToken);
        foreach (var queue in queues)
        {
            var endpoint = await provider.GetSendEndpoint(new Uri($"queue:{queue.Key}"));
            await ConfirmedSend.RunAsync(token => endpoint.SendBatch(queue, token), $"ReplicaNeeded to {queue.Key}", cancellationToken);
        }
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
