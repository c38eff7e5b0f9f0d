using System.Collections.Concurrent;

namespace Xtelemdb.Replicator.Consumers;

/// <summary>
/// Bounds the copies in flight on each (origin host, replica) queue, single requests and the files
/// of lists together: a list does not add its files to what the queue's bound allows.
/// </summary>
public sealed class CopySlots
{
    readonly ConcurrentDictionary<string, SemaphoreSlim> queues = new(StringComparer.Ordinal);

    /// <summary>Sets a queue's bound when it is connected.</summary>
    public void Set(string queue, int slots) => queues[queue] = new SemaphoreSlim(slots, slots);

    /// <summary>Waits for a slot of the queue the message came from; a queue not connected here is not bounded.</summary>
    public async Task<IDisposable> AcquireAsync(Uri inputAddress, CancellationToken cancellationToken)
    {
        if (!queues.TryGetValue(inputAddress.AbsolutePath.Split('/')[^1], out var slots))
            return Slot.None;
        await slots.WaitAsync(cancellationToken);
        return new Slot(slots);
    }

    sealed class Slot(SemaphoreSlim? slots) : IDisposable
    {
        public static readonly Slot None = new(null);
        public void Dispose() => slots?.Release();
    }
}
