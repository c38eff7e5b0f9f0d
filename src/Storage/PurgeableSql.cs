namespace Xtelemdb.Storage;

/// <summary>
/// The queries of purgeable: which origin files the replicas hold safely enough that the instrument
/// may delete them; and verify recording the checksum of a copy that had none.
/// </summary>
static class PurgeableSql
{
    /// <summary>
    /// The origin files in scope with their counted copies: of the origin's current version, with a
    /// checksum, on an enabled replica, not found damaged by the fixity check. Purgeable rows are
    /// those held by @Copies such copies, @Offsite of them on an SSH replica of another host than the
    /// origin, all with one checksum; conflict rows those whose counted copies disagree, whatever
    /// their number. Purgeable rows first, each ordered by host, then folder, so that a reader
    /// totals one folder at a time.
    /// </summary>
    /// <remarks>
    /// A file no watcher ever reported (an origin known only from an imported backup, observed_at
    /// '-infinity' and seen_at null) is left out: its version on the instrument is unknown.
    /// </remarks>
    public const string Candidates = """
        with held as (
            select o.origin_host, o.origin_path, o.mtime, o.size_bytes,
                   coalesce(nullif(left(o.origin_path, length(o.origin_path) - strpos(reverse(o.origin_path), '/')), ''), '/') as folder,
                   min(fr.checksum) <> max(fr.checksum) as conflict,
                   count(*) as copies,
                   count(*) filter (where r.kind = 'ssh' and r.host <> o.origin_host) as offsite_copies,
                   -- Unordered, so that the rows may be hashed: both arrays take the group's rows in one order.
                   array_agg(r.id) as replica_ids,
                   array_agg(fr.checksum) as checksums
              from file_origins o
              join file_replicas fr
                on fr.origin_host = o.origin_host and fr.origin_path = o.origin_path
               and fr.mtime = o.mtime and fr.size_bytes = o.size_bytes
               and fr.checksum is not null and fr.damaged_at is null
              join replicas r on r.id = fr.replica_id and r.enabled
             where o.missing_since is null
               and (o.seen_at is not null or o.observed_at > '-infinity')
               and o.mtime < @Before
               and (@OriginHost::text is null or o.origin_host = @OriginHost)
               and (@PathPrefix::text is null or o.origin_path = @PathPrefix or o.origin_path like @UnderPrefix escape '\')
             group by o.origin_host, o.origin_path
        )
        select origin_host as OriginHost, origin_path as OriginPath, folder as Folder, mtime as Mtime, size_bytes as Size,
               conflict as Conflict, replica_ids as ReplicaIds, checksums as Checksums
          from held
         where conflict or (copies >= @Copies and offsite_copies >= @Offsite)
         order by conflict, origin_host collate "C", folder collate "C", origin_path collate "C"
        """;

    /// <summary>Whether any origin file of the host is known (present or missing).</summary>
    public const string KnowsHost = "select exists (select 1 from file_origins where origin_host = @Host)";

    /// <summary>Every origin host, walking the primary key's index one host at a time rather than reading every row.</summary>
    public const string OriginHosts = """
        with recursive hosts (origin_host) as (
            (select origin_host from file_origins order by origin_host limit 1)
            union all
            select (select o.origin_host from file_origins o where o.origin_host > h.origin_host order by o.origin_host limit 1)
              from hosts h where h.origin_host is not null
        )
        select origin_host from hosts where origin_host is not null
        """;

    /// <summary>
    /// The checksums verify read from copies recorded without one (imported): set only where the
    /// record is still of the version read and still has none, so that a copy made meanwhile keeps
    /// its own. One row per copy in the input. Returns the rows set.
    /// </summary>
    public const string RecordChecksums = """
        update file_replicas fr
           set checksum = i.checksum
          from unnest(@Hosts::text[], @Paths::text[], @Mtimes::timestamptz[], @Sizes::bigint[], @ReplicaPaths::text[], @Checksums::text[])
               as i (origin_host, origin_path, mtime, size_bytes, replica_path, checksum)
         where fr.replica_id = @ReplicaId and fr.origin_host = i.origin_host and fr.origin_path = i.origin_path
           and fr.mtime = i.mtime and fr.size_bytes = i.size_bytes and fr.replica_path = i.replica_path
           and fr.checksum is null
        """;
}
