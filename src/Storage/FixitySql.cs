namespace Xtelemdb.Storage;

/// <summary>The rolling fixity check's queries: which copies to read next, and what was found.</summary>
static class FixitySql
{
    /// <summary>A replica's copies that can be checked (with a checksum, not found damaged), and the oldest time any was last known good.</summary>
    public const string Standing = """
        select count(*) as Copies, min(coalesce(checked_at, copied_at)) as OldestChecked
          from file_replicas
         where replica_id = @Id and damaged_at is null and checksum is not null
        """;

    /// <summary>The copies checked longest ago (or never since they were made), oldest first.</summary>
    public const string Due = """
        select origin_host as OriginHost, origin_path as OriginPath, mtime as Mtime, size_bytes as Size,
               replica_path as ReplicaPath, checksum as Checksum
          from file_replicas
         where replica_id = @Id and damaged_at is null and checksum is not null
         order by coalesce(checked_at, copied_at)
         limit @Limit
        """;

    /// <summary>Found good (or repaired) now: only while the record is still of that version and checksum.</summary>
    public const string MarkChecked = """
        update file_replicas set checked_at = @At, damaged_at = null
         where replica_id = @Id and origin_host = @Host and origin_path = @Path
           and mtime = @Mtime and size_bytes = @Size and checksum = @Checksum
        """;

    /// <summary>Found damaged and not repaired: left out of the check until a new copy is recorded.</summary>
    public const string MarkDamaged = """
        update file_replicas set damaged_at = @At
         where replica_id = @Id and origin_host = @Host and origin_path = @Path
           and mtime = @Mtime and size_bytes = @Size and checksum = @Checksum
        """;

    /// <summary>A copy found gone or replaced: its record no longer claims it (only that very record, not a newer one).</summary>
    public const string Forget = """
        delete from file_replicas
         where replica_id = @Id and origin_host = @Host and origin_path = @Path
           and mtime = @Mtime and size_bytes = @Size and checksum = @Checksum
        """;

    /// <summary>The other replicas' copies of the same version with the same recorded checksum: where a repair may come from.</summary>
    public const string RepairSources = """
        select r.id as Id, r.url as Url, r.kind as Kind, r.host as Host, fr.replica_path as ReplicaPath
          from file_replicas fr join replicas r on r.id = fr.replica_id
         where fr.origin_host = @Host and fr.origin_path = @Path and fr.mtime = @Mtime and fr.size_bytes = @Size
           and fr.checksum = @Checksum and fr.replica_id <> @Id and fr.damaged_at is null and r.enabled
         order by r.id
        """;

    /// <summary>One check of a replica at a time, whichever replicator would run it: a session-level advisory lock.</summary>
    public const string TryLock = "select pg_try_advisory_lock(@Key)";

    public const string Unlock = "select pg_advisory_unlock(@Key)";
}
