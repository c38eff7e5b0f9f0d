using System.Collections.Concurrent;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Replicator.ReplicaSet;

/// <summary>
/// The replicas this replicator copies to: those of its TOML file, and those registered in the
/// database by an operator (xtelemdb add_replica) while it runs or before it started.
/// </summary>
public sealed class ReplicaDirectory(XtelemdbSettings settings)
{
    readonly ConcurrentDictionary<string, ReplicaSettings> replicas =
        new(settings.Replicas.Where(r => r.Enabled).Select(r => KeyValuePair.Create(r.Url, r)), StringComparer.Ordinal);

    public IReadOnlyCollection<ReplicaSettings> All => replicas.Values.ToArray();

    public ReplicaSettings? Find(string url) => replicas.GetValueOrDefault(ReplicaUrls.Normalize(url));

    /// <summary>Adds a replica registered in the database; the TOML file's table for it, if any, wins.</summary>
    public ReplicaSettings Add(string url) =>
        replicas.GetOrAdd(ReplicaUrls.Normalize(url), u => settings.Replicas.FirstOrDefault(r => r.Url == u) ?? ReplicaSettings.FromUrl(u));

    public bool Remove(string url) => replicas.TryRemove(ReplicaUrls.Normalize(url), out _);
}
