using System.Collections.Concurrent;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Storage;

namespace Xtelemdb.Replicator.ReplicaSet;

/// <summary>
/// The replicas this replicator writes, by id: the folders of its own host (written locally) and
/// the ssh:// replicas of other hosts (over SFTP, as its TOML file's table for them says). A local
/// replica of another host is that host's folder: it is never written here.
/// </summary>
public sealed class ReplicaDirectory(XtelemdbSettings settings)
{
    readonly ConcurrentDictionary<int, ReplicaSettings> replicas = new();

    public ReplicaSettings? Find(int id) => replicas.GetValueOrDefault(id);

    public IReadOnlyDictionary<int, ReplicaSettings> All => replicas;

    /// <summary>How this replicator writes a registered replica; null when it cannot.</summary>
    public ReplicaSettings? Writable(ReplicaRecord record)
    {
        if (!record.Enabled || record.Host != settings.Host && record.Kind != "ssh")
            return null;
        var configured = settings.Replicas.FirstOrDefault(r => r.Host == record.Host && r.Url == record.Url);
        return (configured ?? ReplicaSettings.FromRecord(record.Url, record.Kind, record.Host)) with { Selection = record.Selection, Enabled = true };
    }

    public void Set(int id, ReplicaSettings replica) => replicas[id] = replica;

    public bool Remove(int id) => replicas.TryRemove(id, out _);
}
