using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Xtelemdb.Hosting;

namespace Xtelemdb.Watcher;

/// <summary>
/// What the watcher knows of its roots: the last published version of every file, and the paths
/// the live watcher saw change that wait to settle. Thread-safe: events arrive on the thread pool.
/// </summary>
sealed class WatchedTree
{
    /// <summary>The version last published of a file, and the last poll that saw it.</summary>
    struct Known(FileVersion version, long generation)
    {
        public FileVersion Version = version;
        public long Generation = generation;
    }

    readonly record struct Pending(DateTime FirstEvent, DateTime LastEvent);

    readonly Lock gate = new();
    // Folder, then file name: a million files share their folders' strings and keep their versions
    // inline, about 100 bytes a file; a dictionary of full paths to objects took 250.
    readonly Dictionary<string, Dictionary<string, Known>> known = new(StringComparer.Ordinal);
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
            if (Unsafe.IsNullRef(ref Find(path)) && !Directory.Exists(path))
            {
                var below = path + "/";
                foreach (var (folder, files) in known.Where(f => f.Key == path || f.Key.StartsWith(below, StringComparison.Ordinal)))
                {
                    foreach (var name in files.Keys)
                        Mark(folder + "/" + name, now);
                }
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

    /// <summary>True when the version differs from the one last published.</summary>
    public bool Differs(string path, FileVersion version)
    {
        lock (gate)
        {
            ref var k = ref Find(path);
            return Unsafe.IsNullRef(ref k) || !k.Version.SameAs(version);
        }
    }

    public bool IsKnown(string path)
    {
        lock (gate) return !Unsafe.IsNullRef(ref Find(path));
    }

    public void Published(string path, FileVersion? version)
    {
        lock (gate)
        {
            var slash = path.LastIndexOf('/');
            var (folder, name) = (path[..slash], path[(slash + 1)..]);
            if (version is { } v)
            {
                ref var files = ref CollectionsMarshal.GetValueRefOrAddDefault(known, folder, out _);
                files ??= new Dictionary<string, Known>(StringComparer.Ordinal);
                files[name] = new Known(v, generation);
            }
            else if (known.TryGetValue(folder, out var files) && files.Remove(name) && files.Count == 0)
            {
                known.Remove(folder);
            }
        }
    }

    /// <summary>No file's version: what a file counts as when it may or may not have been published.</summary>
    static readonly FileVersion Unknown = new(DateTime.MinValue, -1);

    /// <summary>
    /// A publish of this file failed, yet the broker may have taken it before it could confirm:
    /// the file counts as known (a later deletion is reported) at no version (the next poll
    /// sends it again).
    /// </summary>
    public void MaybePublished(string path) => Published(path, Unknown);

    /// <summary>
    /// The inventory could not record this observation (its list faulted for good): unless a later
    /// one was published since, the file counts as known at no version, so that it is reported
    /// again, its version or its deletion. True when it will be.
    /// </summary>
    public bool Forget(string path, FileVersion? version)
    {
        lock (gate)
        {
            ref var k = ref Find(path);
            var current = Unsafe.IsNullRef(ref k) ? (FileVersion?)null : k.Version;
            var superseded = version is { } v ? current is not { } c || !c.SameAs(v) : current is not null;
            if (!superseded)
                Published(path, Unknown);
            return !superseded;
        }
    }

    /// <summary>Starts a full poll: every file the poll sees is stamped with the new generation.</summary>
    public long BeginPoll()
    {
        lock (gate) return ++generation;
    }

    /// <summary>
    /// A poll saw the file at this version: stamps it with the poll's generation, and returns true
    /// when the version is not the one last published and the live watcher is not already on it.
    /// One lock and one lookup per file: the poll calls it a million times.
    /// </summary>
    public bool Seen(string path, long pollGeneration, FileVersion version)
    {
        lock (gate)
        {
            ref var k = ref Find(path);
            if (Unsafe.IsNullRef(ref k))
                return !pending.ContainsKey(path);
            k.Generation = pollGeneration;
            return !k.Version.SameAs(version) && !pending.ContainsKey(path);
        }
    }

    /// <summary>Known files under the roots the poll did not see, and that the live watcher is not already handling.</summary>
    public IReadOnlyList<string> NotSeenSince(long pollGeneration, IReadOnlyList<string> roots)
    {
        lock (gate)
        {
            return known
                .Where(f => roots.Any(r => f.Key == r || f.Key.StartsWith(r + "/", StringComparison.Ordinal)))
                .SelectMany(f => f.Value.Where(k => k.Value.Generation < pollGeneration).Select(k => f.Key + "/" + k.Key))
                .Where(path => !pending.ContainsKey(path))
                .ToArray();
        }
    }

    /// <summary>After a poll: gives back the room the dictionaries grew into, a third of their size.</summary>
    public void Compact()
    {
        lock (gate)
        {
            known.TrimExcess();
            foreach (var files in known.Values)
                files.TrimExcess();
        }
    }

    /// <summary>What is known of a file, found without allocating; a null reference if nothing. Call under the lock.</summary>
    ref Known Find(string path)
    {
        var slash = path.LastIndexOf('/');
        if (slash < 0 || !known.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(path.AsSpan(0, slash), out var files))
            return ref Unsafe.NullRef<Known>();
        return ref CollectionsMarshal.GetValueRefOrNullRef(files.GetAlternateLookup<ReadOnlySpan<char>>(), path.AsSpan(slash + 1));
    }
}
