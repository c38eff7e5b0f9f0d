using System.Collections.Concurrent;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Storage;

namespace Xtelemdb.Replicator.ReplicaSet;

/// <summary>
/// The replicas this replicator writes, by id: the folders of its own host (written locally) and
/// the ssh:// replicas of other hosts (over SFTP, as its TOML file's table for them says). A local
/// replica of another host is that host's folder: it is never written here.
/// </summary>
public sealed class ReplicaDirectory(XtelemdbSettings settings, InventoryStore store)
{
    readonly ConcurrentDictionary<int, ReplicaSettings> replicas = new();
    readonly SemaphoreSlim oneAtATime = new(1, 1);

    /// <summary>Reads the registered replica set again and keeps what this replicator writes.</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await oneAtATime.WaitAsync(cancellationToken);
        try
        {
            var records = await store.ReplicasAsync(cancellationToken);
            foreach (var record in records)
            {
                if (Writable(record) is { } replica)
                    replicas[record.Id] = replica;
                else
                    replicas.TryRemove(record.Id, out _);
            }
            // A replica purged from the database is gone from here too.
            foreach (var id in replicas.Keys.Except(records.Select(r => r.Id)).ToArray())
                replicas.TryRemove(id, out _);
        }
        finally
        {
            oneAtATime.Release();
        }
    }

    public ReplicaSettings? Find(int id) => replicas.GetValueOrDefault(id);

    public IReadOnlyDictionary<int, ReplicaSettings> All => replicas;

    /// <summary>Whether the replica selects this file, as the database (which decides the backlog) reads its patterns.</summary>
    public Task<bool> SelectsAsync(int id, string host, string path, CancellationToken cancellationToken) =>
        store.SelectsAsync(id, host, path, cancellationToken);

    /// <summary>What the database records of this replica's copy of the file; null where it has none.</summary>
    public Task<RecordedCopy?> RecordedCopyAsync(int id, string host, string path, CancellationToken cancellationToken) =>
        store.RecordedCopyAsync(id, host, path, cancellationToken);

    /// <summary>The checksum recorded for the replica's copy of this version, where it may be moved; null where there is none.</summary>
    public Task<string?> MovableChecksumAsync(int id, string host, string path, Hosting.FileVersion version, CancellationToken cancellationToken) =>
        store.MovableChecksumAsync(id, host, path, version, cancellationToken);

    readonly ConcurrentDictionary<int, string> unflushedRecorded = new();

    /// <summary>Records in the database, once per change, why a replica's copies are not flushed (null: they are).</summary>
    public async Task RecordUnflushedAsync(int id, string? why, CancellationToken cancellationToken)
    {
        if (unflushedRecorded.TryGetValue(id, out var recorded) && recorded == (why ?? ""))
            return;
        await store.SetUnflushedAsync(id, why, cancellationToken);
        unflushedRecorded[id] = why ?? "";
    }

    /// <summary>How this replicator writes a registered replica; null when it cannot.</summary>
    public ReplicaSettings? Writable(ReplicaRecord record)
    {
        if (!record.Enabled || record.Host != settings.Host && record.Kind != "ssh")
            return null;
        return record.SettingsIn(settings);
    }

    /// <summary>Sets one replica as <see cref="RefreshAsync"/> would (tests without a database).</summary>
    public void Set(int id, ReplicaSettings replica) => replicas[id] = replica;
}
