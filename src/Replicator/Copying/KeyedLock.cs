namespace Xtelemdb.Replicator.Copying;

/// <summary>One holder per key at a time: two requests for the same target make one copy, not two.</summary>
public sealed class KeyedLock
{
    readonly Dictionary<string, (SemaphoreSlim Gate, int Users)> gates = new(StringComparer.Ordinal);

    public async Task<IDisposable> AcquireAsync(string key, CancellationToken cancellationToken)
    {
        SemaphoreSlim gate;
        lock (gates)
        {
            gate = gates.TryGetValue(key, out var entry) ? entry.Gate : new SemaphoreSlim(1, 1);
            gates[key] = (gate, entry.Users + 1);
        }
        try
        {
            await gate.WaitAsync(cancellationToken);
        }
        catch
        {
            Release(key, wasHeld: false);
            throw;
        }
        return new Holder(this, key);
    }

    void Release(string key, bool wasHeld)
    {
        lock (gates)
        {
            var (gate, users) = gates[key];
            if (wasHeld)
                gate.Release();
            if (users == 1)
            {
                gates.Remove(key);
                gate.Dispose();
            }
            else
            {
                gates[key] = (gate, users - 1);
            }
        }
    }

    sealed class Holder(KeyedLock owner, string key) : IDisposable
    {
        int released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref released, 1) == 0)
                owner.Release(key, wasHeld: true);
        }
    }
}
