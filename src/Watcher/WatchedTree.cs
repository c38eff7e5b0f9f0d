using Xtelemdb.Hosting;

namespace Xtelemdb.Watcher;

/// <summary>
/// What the watcher knows of its roots: the last published version of every file, and the paths
/// the live watcher saw change that wait to settle. Thread-safe: events arrive on the thread pool.
/// </summary>
sealed class WatchedTree
{
    sealed class Known(FileVersion version, long generation)
    {
        public FileVersion Version = version;
        public long Generation = generation;
    }

    readonly record struct Pending(DateTime FirstEvent, DateTime LastEvent);

    readonly Lock gate = new();
    readonly Dictionary<string, Known> known = new(StringComparer.Ordinal);
    readonly Dictionary<string, Pending> pending = new(StringComparer.Ordinal);
    readonly SemaphoreSlim changed = new(0, 1);
    long generation;

    public bool HasPending { get { lock (gate) return pending.Count > 0; } }

    /// <summary>Waits until the live watcher reports something, or the timeout passes: an idle watcher sleeps.</summary>
    public Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => changed.WaitAsync(timeout, cancellationToken);

    /// <summary>Wakes <see cref="WaitAsync"/>.</summary>
    public void Signal()
    {
        try
        {
            changed.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already signalled.
        }
    }

    /// <summary>The live watcher saw this path change; a removed folder marks every file under it.</summary>
    public void Touch(string path, DateTime now)
    {
        lock (gate)
        {
            Mark(path, now);
            if (!known.ContainsKey(path) && !Directory.Exists(path))
            {
                var folder = path + "/";
                foreach (var file in known.Keys.Where(k => k.StartsWith(folder, StringComparison.Ordinal)).ToArray())
                    Mark(file, now);
            }
        }
        Signal();
    }

    void Mark(string path, DateTime now) =>
        pending[path] = pending.TryGetValue(path, out var p) ? p with { LastEvent = now } : new Pending(now, now);

    /// <summary>Paths quiet for <paramref name="settle"/>, or changing for longer than <paramref name="maxInterval"/>; removed from pending.</summary>
    public IReadOnlyList<string> TakeDue(DateTime now, TimeSpan settle, TimeSpan maxInterval)
    {
        lock (gate)
        {
            var due = pending.Where(p => now - p.Value.LastEvent >= settle || now - p.Value.FirstEvent >= maxInterval)
                .Select(p => p.Key).ToArray();
            foreach (var path in due)
                pending.Remove(path);
            return due;
        }
    }

    public bool IsPending(string path)
    {
        lock (gate) return pending.ContainsKey(path);
    }

    /// <summary>True when the version differs from the one last published.</summary>
    public bool Differs(string path, FileVersion version)
    {
        lock (gate) return !known.TryGetValue(path, out var k) || !k.Version.SameAs(version);
    }

    public bool IsKnown(string path)
    {
        lock (gate) return known.ContainsKey(path);
    }

    public void Published(string path, FileVersion? version)
    {
        lock (gate)
        {
            if (version is { } v)
                known[path] = new Known(v, generation);
            else
                known.Remove(path);
        }
    }

    /// <summary>Starts a full poll: every file the poll sees is stamped with the new generation.</summary>
    public long BeginPoll()
    {
        lock (gate) return ++generation;
    }

    public void Seen(string path, long pollGeneration)
    {
        lock (gate)
        {
            if (known.TryGetValue(path, out var k))
                k.Generation = pollGeneration;
        }
    }

    /// <summary>Known files under the roots the poll did not see, and that the live watcher is not already handling.</summary>
    public IReadOnlyList<string> NotSeenSince(long pollGeneration, IReadOnlyList<string> roots)
    {
        lock (gate)
        {
            return known.Where(k => k.Value.Generation < pollGeneration && !pending.ContainsKey(k.Key)
                    && roots.Any(r => k.Key.StartsWith(r + "/", StringComparison.Ordinal)))
                .Select(k => k.Key).ToArray();
        }
    }
}
