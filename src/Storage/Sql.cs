namespace Xtelemdb.Storage;

/// <summary>Every statement the inventory runs, in one place.</summary>
static class Sql
{
    /// <summary>
    /// One round trip for a batch of observations. A row moves only to a newer observation of a
    /// different version; a vanished file keeps its version and gets missing_since.
    /// </summary>
    public const string UpsertOrigins = $"""
        with input as (
            select * from unnest(@Hosts::text[], @Paths::text[], @Mtimes::timestamptz[], @Sizes::bigint[],
                                 @ObservedAts::timestamptz[], @Deleted::boolean[])
                     as i (origin_host, origin_path, mtime, size_bytes, observed_at, deleted)
        ), present as (
            insert into file_origins as o (origin_host, origin_path, mtime, size_bytes, observed_at, seen_at)
            select origin_host, origin_path, mtime, size_bytes, observed_at, observed_at from input where not deleted
            on conflict (origin_host, origin_path) do update
               set seen_at = greatest(o.seen_at, excluded.seen_at),
                   mtime = case when {MovesOn} then excluded.mtime else o.mtime end,
                   size_bytes = case when {MovesOn} then excluded.size_bytes else o.size_bytes end,
                   missing_since = case when {MovesOn} then null else o.missing_since end,
                   observed_at = case when {MovesOn} then excluded.observed_at else o.observed_at end
             where {MovesOn} or o.seen_at is null or o.seen_at < excluded.seen_at
        )
        update file_origins o
           set missing_since = i.observed_at, observed_at = i.observed_at
          from input i
         where i.deleted and o.origin_host = i.origin_host and o.origin_path = i.origin_path
           and o.observed_at < i.observed_at and o.missing_since is null
        """;

    /// <summary>A newer observation of another version (or of a file that was missing) moves the row.</summary>
    const string MovesOn = "(o.observed_at < excluded.observed_at and (o.mtime, o.size_bytes, o.missing_since is null) is distinct from (excluded.mtime, excluded.size_bytes, true))";

    /// <summary>After a start-up scan: present rows under its roots that it did not report were deleted meanwhile.</summary>
    public const string MarkUnseenMissing = """
        update file_origins
           set missing_since = @StartedAt, observed_at = @StartedAt
         where origin_host = @Host and missing_since is null
           and (seen_at is null or seen_at < @StartedAt) and observed_at < @StartedAt
           and origin_path like any(@RootPatterns)
        """;

    const string NeedColumns = """
        r.id as ReplicaId, r.url as ReplicaUrl, o.origin_host as OriginHost, o.origin_path as OriginPath,
        o.mtime as Mtime, o.size_bytes as Size
        """;

    const string IsBehind = """
        r.enabled and o.missing_since is null
        and (fr.replica_id is null or fr.mtime <> o.mtime or fr.size_bytes <> o.size_bytes)
        """;

    /// <summary>For the given origins, every enabled replica that lacks their current version.</summary>
    public const string NeedsOf = $"""
        select {NeedColumns}
          from unnest(@Hosts::text[], @Paths::text[]) as k (origin_host, origin_path)
          join file_origins o on o.origin_host = k.origin_host and o.origin_path = k.origin_path
          cross join replicas r
          left join file_replicas fr
                 on fr.replica_id = r.id and fr.origin_host = o.origin_host and fr.origin_path = o.origin_path
         where (@ReplicaId::integer is null or r.id = @ReplicaId) and {IsBehind}
        """;

    /// <summary>The backlog, narrowed by replica, host and path prefix; streamed, never loaded whole.</summary>
    public const string Backlog = $"""
        select {NeedColumns}
          from file_origins o
          join replicas r on (@ReplicaId::integer is null or r.id = @ReplicaId)
          left join file_replicas fr
                 on fr.replica_id = r.id and fr.origin_host = o.origin_host and fr.origin_path = o.origin_path
         where (@OriginHost::text is null or o.origin_host = @OriginHost)
           and (@PathPrefix::text is null or o.origin_path like @PathPattern escape '\')
           and {IsBehind}
        """;

    /// <summary>
    /// The copiers stated these sources at these versions: newer observations of the origins.
    /// Returns the origins that moved on. One row per origin in the input.
    /// </summary>
    public const string ObserveOriginsFromCopies = """
        update file_origins o
           set mtime = i.mtime, size_bytes = i.size_bytes, observed_at = i.copied_at, missing_since = null
          from unnest(@Hosts::text[], @Paths::text[], @Mtimes::timestamptz[], @Sizes::bigint[], @CopiedAts::timestamptz[])
               as i (origin_host, origin_path, mtime, size_bytes, copied_at)
         where o.origin_host = i.origin_host and o.origin_path = i.origin_path and o.observed_at < i.copied_at
           and (o.mtime, o.size_bytes, o.missing_since is null) is distinct from (i.mtime, i.size_bytes, true)
        returning o.origin_host as Host, o.origin_path as Path
        """;

    /// <summary>
    /// Records copies unless a later copy of the same file is recorded already; a quick check keeps
    /// the known checksum. One row per (replica, origin) in the input: ON CONFLICT cannot touch a row twice.
    /// </summary>
    public const string RecordReplicas = """
        insert into file_replicas as fr (replica_id, origin_host, origin_path, mtime, size_bytes, replica_path, checksum, copied_at)
        select * from unnest(@ReplicaIds::integer[], @Hosts::text[], @Paths::text[], @Mtimes::timestamptz[], @Sizes::bigint[],
                             @ReplicaPaths::text[], @Checksums::text[], @CopiedAts::timestamptz[])
        on conflict (replica_id, origin_host, origin_path) do update
           set mtime = excluded.mtime, size_bytes = excluded.size_bytes, replica_path = excluded.replica_path,
               copied_at = excluded.copied_at,
               checksum = case when excluded.checksum is not null then excluded.checksum
                               when fr.mtime = excluded.mtime and fr.size_bytes = excluded.size_bytes then fr.checksum end
         where fr.copied_at < excluded.copied_at
        """;

    public const string Replicas = "select id as Id, url as Url, kind as Kind, enabled as Enabled from replicas order by id";

    public const string ReplicaByUrl = "select id as Id, url as Url, kind as Kind, enabled as Enabled from replicas where url = @Url";

    /// <summary>Registers a replica, or updates whether it is enabled; IsNew is true for a new row (xmax = 0).</summary>
    public const string RegisterReplica = """
        insert into replicas as r (url, kind, enabled) values (@Url, @Kind, @Enabled)
        on conflict (url) do update set enabled = excluded.enabled
        returning id as Id, url as Url, kind as Kind, enabled as Enabled, (xmax = 0) as IsNew
        """;

    /// <summary>The size of a backlog: the Backlog query, counted.</summary>
    public const string BacklogSize = $"select count(*) as Files, coalesce(sum(b.Size), 0)::bigint as Bytes from ({Backlog}) b";

    /// <summary>One row per replica: what is in sync, what is behind, and since when.</summary>
    public const string ReplicaStatus = """
        select r.id as Id, r.url as Url, r.kind as Kind, r.enabled as Enabled,
               count(o.origin_path) filter (where fr.replica_id is not null and fr.mtime = o.mtime and fr.size_bytes = o.size_bytes) as FilesInSync,
               count(o.origin_path) filter (where fr.replica_id is null or fr.mtime <> o.mtime or fr.size_bytes <> o.size_bytes) as FilesBehind,
               coalesce(sum(o.size_bytes) filter (where fr.replica_id is null or fr.mtime <> o.mtime or fr.size_bytes <> o.size_bytes), 0)::bigint as BytesBehind,
               min(o.mtime) filter (where fr.replica_id is null or fr.mtime <> o.mtime or fr.size_bytes <> o.size_bytes) as OldestBehind,
               (select max(copied_at) from file_replicas last where last.replica_id = r.id) as LastCopy
          from replicas r
          left join file_origins o on o.missing_since is null
          left join file_replicas fr
                 on fr.replica_id = r.id and fr.origin_host = o.origin_host and fr.origin_path = o.origin_path
         group by r.id
         order by r.id
        """;

    /// <summary>Enrolls files found on a backup as origins, where none is known yet; any real observation is newer.</summary>
    public const string ImportOrigins = """
        insert into file_origins (origin_host, origin_path, mtime, size_bytes, observed_at)
        select h, p, m, s, '-infinity' from unnest(@Hosts::text[], @Paths::text[], @Mtimes::timestamptz[], @Sizes::bigint[]) as i (h, p, m, s)
        on conflict (origin_host, origin_path) do nothing
        """;

    /// <summary>Records the backup's own version of each file, so a differing origin is recopied; a known copy stays.</summary>
    public const string ImportReplicas = """
        insert into file_replicas (replica_id, origin_host, origin_path, mtime, size_bytes, replica_path, copied_at)
        select @ReplicaId, h, p, m, s, t, now()
          from unnest(@Hosts::text[], @Paths::text[], @Mtimes::timestamptz[], @Sizes::bigint[], @Targets::text[]) as i (h, p, m, s, t)
        on conflict (replica_id, origin_host, origin_path) do nothing
        """;

    /// <summary>Every copy recorded on a replica, for verify.</summary>
    public const string RecordedCopies = """
        select fr.origin_host as OriginHost, fr.origin_path as OriginPath, fr.mtime as Mtime, fr.size_bytes as Size,
               fr.replica_path as ReplicaPath, fr.checksum as Checksum
          from file_replicas fr where fr.replica_id = @ReplicaId
        """;

    /// <summary>Which of these paths on a replica are recorded.</summary>
    public const string RecordedPaths = """
        select replica_path from file_replicas where replica_id = @ReplicaId and replica_path = any(@Paths::text[])
        """;

    /// <summary>The requests that bring these replica files back to their origin's version.</summary>
    public const string NeedsForCopies = """
        select r.id as ReplicaId, r.url as ReplicaUrl, o.origin_host as OriginHost, o.origin_path as OriginPath,
               o.mtime as Mtime, o.size_bytes as Size
          from unnest(@Hosts::text[], @Paths::text[]) as k (origin_host, origin_path)
          join file_origins o on o.origin_host = k.origin_host and o.origin_path = k.origin_path
          join replicas r on r.id = @ReplicaId
         where o.missing_since is null
        """;

    public const string DisableReplica = "update replicas set enabled = false where id = @Id and enabled";

    /// <summary>Forgets a replica and what it holds; never touches a file.</summary>
    public const string PurgeReplica = """
        delete from file_replicas where replica_id = @Id;
        delete from replicas where id = @Id;
        """;
}
