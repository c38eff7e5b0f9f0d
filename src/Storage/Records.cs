using Xtelemdb.Hosting.Selection;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Storage;

/// <summary>A row of the replicas table: one folder on one host.</summary>
public sealed record ReplicaRecord
{
    public int Id { get; init; }
    public required string Url { get; init; }
    public required string Kind { get; init; }
    public bool Enabled { get; init; }
    public required string Host { get; init; }
    public string[]? Hosts { get; init; }
    public string[] Include { get; init; } = [];
    public string[] Exclude { get; init; } = [];
    /// <summary>Set by <see cref="InventoryStore.RegisterReplicaAsync"/> only.</summary>
    public bool IsNew { get; init; }
    /// <summary>Set by <see cref="InventoryStore.RegisterReplicaAsync"/> only: enabled again, or selecting otherwise.</summary>
    public bool Changed { get; init; }

    public string Name => ReplicaNames.Of(Kind, Host, Url);

    public ReplicaSelection Selection => new(Hosts, Include, Exclude);

    /// <summary>How to reach it from here: its table in the TOML file (SSH keys, limits), else the defaults for its URL; its selection as registered.</summary>
    public ReplicaSettings SettingsIn(XtelemdbSettings settings) =>
        (settings.Replica(Host, Url) ?? ReplicaSettings.FromRecord(Url, Kind, Host)) with { Selection = Selection, Enabled = Enabled };
}

/// <summary>A replica's standing, for replica_list.</summary>
public sealed record ReplicaStatus
{
    public int Id { get; init; }
    public required string Url { get; init; }
    public required string Kind { get; init; }
    public required string Host { get; init; }
    public string Name => ReplicaNames.Of(Kind, Host, Url);
    public bool Enabled { get; init; }
    public long FilesInSync { get; init; }
    public long FilesBehind { get; init; }
    public long BytesBehind { get; init; }
    /// <summary>The mtime of the oldest present file this replica lacks.</summary>
    public DateTime? OldestBehind { get; init; }
    public DateTime? LastCopy { get; init; }
    /// <summary>Why copies are not flushed to the replica's disk when recorded; null where they are.</summary>
    public string? Unflushed { get; init; }
}

/// <summary>An entry a watcher found and does not back up, and why.</summary>
public sealed record SkippedRecord(string OriginHost, string Path, string Reason, DateTime FirstSeen);

/// <summary>What one (replica, origin host) pair lacks: the backlog of one queue.</summary>
public sealed record PairStatus(int ReplicaId, string OriginHost, long FilesBehind, long BytesBehind);

/// <summary>What a replica's selection picks of the present origin files.</summary>
public sealed record SelectionCount
{
    public long Selected { get; init; }
    public long Present { get; init; }
    /// <summary>Hosts the selection names of which no origin file is known (a typo?).</summary>
    public string[] UnknownHosts { get; init; } = [];
}

/// <summary>How much a (narrowed) backlog holds.</summary>
public sealed record BacklogSize(long Files, long Bytes);

/// <summary>A copy the inventory records on a replica.</summary>
public sealed record RecordedCopy
{
    public required string OriginHost { get; init; }
    public required string OriginPath { get; init; }
    public DateTime Mtime { get; init; }
    public long Size { get; init; }
    public required string ReplicaPath { get; init; }
    public string? Checksum { get; init; }
}

/// <summary>A file found on a backup, to enroll.</summary>
public sealed record BackupFile(string OriginHost, string OriginPath, DateTime Mtime, long Size, string ReplicaPath);

/// <summary>How far the backlog the database keeps for a replica is from the files and copies: backlog rows it lacks, rows it holds wrongly, counts off.</summary>
public sealed record BacklogDrift(long Lacking, long Wrong, bool CountsOff)
{
    public bool None => Lacking == 0 && Wrong == 0 && !CountsOff;
}
