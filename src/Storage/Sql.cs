namespace Xtelemdb.Storage;

/// <summary>Every statement the inventory runs, in one place.</summary>
static class Sql
{
    /// <summary>
    /// One round trip for a batch of observations. A row moves only to a newer observation of a
    /// different version; a vanished file keeps its version and gets missing_since. A deletion of
    /// a file not recorded yet leaves a row that is missing from the start: the observation of the
    /// file before its deletion may be committed after it (lists are consumed four at a time, and a
    /// redelivered list comes late), and it must find the deletion, not nothing. One insert for
    /// both kinds, so that rows are locked in the input's order.
    /// </summary>
    public const string UpsertOrigins = $"""
        with input as (
            select * from unnest(@Hosts::text[], @Paths::text[], @Mtimes::timestamptz[], @Sizes::bigint[],
                                 @ObservedAts::timestamptz[], @Deleted::boolean[])
                     as i (origin_host, origin_path, mtime, size_bytes, observed_at, deleted)
        )
        insert into file_origins as o (origin_host, origin_path, mtime, size_bytes, observed_at, seen_at, missing_since)
        select origin_host, origin_path, mtime, size_bytes, observed_at,
               case when not deleted then observed_at end, case when deleted then observed_at end
          from input
        on conflict (origin_host, origin_path) do update
           set seen_at = greatest(o.seen_at, excluded.seen_at),
               mtime = case when {MovesOn} then excluded.mtime else o.mtime end,
               size_bytes = case when {MovesOn} then excluded.size_bytes else o.size_bytes end,
               missing_since = case when {MovesOn} then null when {GoesMissing} then excluded.missing_since else o.missing_since end,
               observed_at = case when {MovesOn} or {GoesMissing} then excluded.observed_at else o.observed_at end
         where {MovesOn} or {GoesMissing} or (excluded.seen_at is not null and (o.seen_at is null or o.seen_at < excluded.seen_at))
        """;

    /// <summary>A newer observation of another version (or of a file that was missing) moves the row.</summary>
    const string MovesOn = "(excluded.missing_since is null and o.observed_at < excluded.observed_at and (o.mtime, o.size_bytes, o.missing_since is null) is distinct from (excluded.mtime, excluded.size_bytes, true))";

    /// <summary>A newer deletion of a present file marks it missing; its version stays.</summary>
    const string GoesMissing = "(excluded.missing_since is not null and o.missing_since is null and o.observed_at < excluded.observed_at)";

    /// <summary>After a start-up scan: present rows under its roots that it did not report were deleted meanwhile.</summary>
    public const string MarkUnseenMissing = """
        update file_origins
           set missing_since = @StartedAt, observed_at = @StartedAt
         where origin_host = @Host and missing_since is null
           and (seen_at is null or seen_at < @StartedAt) and observed_at < @StartedAt
           and origin_path like any(@RootPatterns)
        """;

    /// <summary>Takes a list only if it is newer than the last one applied for the host; returns 1 if so.</summary>
    public const string ClaimSkippedList = """
        insert into skipped_lists (origin_host, seen_at) values (@Host, @SeenAt)
        on conflict (origin_host) do update set seen_at = excluded.seen_at where skipped_lists.seen_at < excluded.seen_at
        """;

    /// <summary>A watcher's complete list of skipped entries under its roots replaces what was held for them.</summary>
    public const string ForgetSkipped = """
        delete from skipped_files
         where origin_host = @Host and (path like any(@RootPatterns) or path = any(@Roots)) and not (path = any(@Paths))
        """;

    public const string RecordSkipped = """
        insert into skipped_files (origin_host, path, reason, folder, first_seen, last_seen)
        select @Host, p, r, f, @SeenAt, @SeenAt from unnest(@Paths::text[], @Reasons::text[], @Folders::boolean[]) as s (p, r, f)
        on conflict (origin_host, md5(path)) do update set reason = excluded.reason, folder = excluded.folder, last_seen = excluded.last_seen
        """;

    /// <summary>
    /// The skipped entries of the origins a replica selects (by its hosts and patterns); a skipped
    /// folder by its host alone, since the files below it that a pattern would select are unknown.
    /// </summary>
    public const string SkippedFor = $"""
        select o.origin_host as OriginHost, o.origin_path as Path, o.reason as Reason, o.first_seen as FirstSeen
          from (select origin_host, path as origin_path, reason, folder, first_seen from skipped_files) o
          join replicas r on r.id = @ReplicaId
         where {Selects} or (o.folder and (r.hosts is null or o.origin_host = any(r.hosts)))
         order by o.origin_host, o.origin_path
        """;

    /// <summary>"exao1:/mnt/backup" for a local replica, the URL for an ssh:// one (ReplicaNames.Of).</summary>
    const string ReplicaName = "case when r.kind = 'local' then r.host || ':' || r.url else r.url end";

    const string NeedColumns = $"""
        r.id as ReplicaId, {ReplicaName} as ReplicaUrl, o.origin_host as OriginHost, o.origin_path as OriginPath,
        o.mtime as Mtime, o.size_bytes as Size
        """;

    /// <summary>The replica receives this origin file: its host is selected, an include pattern matches, no exclude does.</summary>
    const string Selects = """
        (r.hosts is null or o.origin_host = any(r.hosts))
        and (r.include_regex is null or o.origin_path ~ r.include_regex)
        and (r.exclude_regex is null or o.origin_path !~ r.exclude_regex)
        """;

    const string IsBehind = $"""
        r.enabled and o.missing_since is null and {Selects}
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

    const string PairFilter = """
        r.enabled and (@ReplicaId::integer is null or r.id = @ReplicaId)
           and (@OriginHost::text is null or b.origin_host = @OriginHost)
        """;

    const string BacklogFilter = $"""
        {PairFilter}
           and (@PathPrefix::text is null or b.origin_path like @PathPattern escape '\')
        """;

    /// <summary>
    /// The backlog, narrowed by replica, host and path prefix: the enabled replicas' rows of
    /// replica_backlog, which the database keeps (migration 009). Streamed, never loaded whole: the
    /// first row leaves at once, however many follow.
    /// </summary>
    public const string Backlog = $"""
        select r.id as ReplicaId, {ReplicaName} as ReplicaUrl, b.origin_host as OriginHost, b.origin_path as OriginPath,
               b.mtime as Mtime, b.size_bytes as Size
          from replica_backlog b join replicas r on r.id = b.replica_id
         where {BacklogFilter}
        """;

    /// <summary>
    /// Locks the origin rows a group of copies names, all at once and in the order of their bytes (as
    /// lists of observations are written, and as migration 009's triggers lock them): taken one by one
    /// in the order of the reports, two groups and a list would deadlock on them.
    /// </summary>
    public const string LockOrigins = """
        select 1 from file_origins o join unnest(@Hosts::text[], @Paths::text[]) as k (h, p) on o.origin_host = k.h and o.origin_path = k.p
         order by o.origin_host collate "C", o.origin_path collate "C" for no key update of o
        """;

    /// <summary>
    /// The copiers stated these sources at these versions. A copier's clock (on another host, or read
    /// after its rename and fsync) cannot order its report against the watcher's, so a report moves
    /// a present origin only forward, to a later version (mtime, then size) stated after the
    /// watcher's observation, and leaves observed_at alone: the watcher's next report always
    /// applies, and only the watcher says a file is gone or back. Returns the origins that moved on.
    /// One row per origin in the input.
    /// </summary>
    public const string ObserveOriginsFromCopies = """
        update file_origins o
           set mtime = i.mtime, size_bytes = i.size_bytes
          from unnest(@Hosts::text[], @Paths::text[], @Mtimes::timestamptz[], @Sizes::bigint[], @CopiedAts::timestamptz[])
               as i (origin_host, origin_path, mtime, size_bytes, copied_at)
         where o.origin_host = i.origin_host and o.origin_path = i.origin_path and o.missing_since is null
           and o.observed_at < i.copied_at and (i.mtime, i.size_bytes) > (o.mtime, o.size_bytes)
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
               copied_at = excluded.copied_at, checked_at = null, damaged_at = null,
               checksum = case when excluded.checksum is not null then excluded.checksum
                               when fr.mtime = excluded.mtime and fr.size_bytes = excluded.size_bytes then fr.checksum end
         where fr.copied_at < excluded.copied_at
        """;

    /// <summary>What a replica selects of the present origin files, and the hosts it names that have none.</summary>
    public const string SelectionCount = $"""
        select (select count(*) from file_origins o where o.missing_since is null and {Selects}) as Selected,
               (select count(*) from file_origins o where o.missing_since is null) as Present,
               coalesce((select array_agg(h) from unnest(r.hosts) h
                          where not exists (select 1 from file_origins o where o.origin_host = h)), array[]::text[]) as UnknownHosts
          from replicas r where r.id = @Id
        """;

    /// <summary>Whether a replica selects one origin file: the same test the backlog makes.</summary>
    public const string ReplicaSelects = $"""
        select exists (select 1 from replicas r, (values (@Host, @Path)) as o (origin_host, origin_path) where r.id = @Id and {Selects})
        """;

    /// <summary>What is recorded of one replica's copy of one origin file.</summary>
    public const string RecordedCopy = """
        select origin_host as OriginHost, origin_path as OriginPath, mtime as Mtime, size_bytes as Size, replica_path as ReplicaPath, checksum as Checksum
          from file_replicas where replica_id = @Id and origin_host = @Host and origin_path = @Path and damaged_at is null
        """;

    const string ReplicaColumns = "id as Id, url as Url, kind as Kind, enabled as Enabled, host as Host, hosts as Hosts, include as Include, exclude as Exclude";

    public const string Replicas = $"select {ReplicaColumns} from replicas order by id";

    public const string ReplicaById = $"select {ReplicaColumns} from replicas where id = @Id";

    /// <summary>By URL: on one host, or on any host when @Host is null.</summary>
    public const string ReplicasByUrl = $"select {ReplicaColumns} from replicas where url = @Url and (@Host::text is null or host = @Host) order by id";

    /// <summary>A TOML file's enabled = true does not undo an operator's remove_replica.</summary>
    const string EnabledAfter = "case when @FromConfiguration and excluded.enabled and r.disabled_by = 'operator' then false else excluded.enabled end";

    /// <summary>
    /// Registers a replica, or updates whether it is enabled and what it selects. From a TOML file
    /// (@FromConfiguration), enabled = true leaves a replica an operator removed disabled, and with
    /// @KeepSelection (an ssh:// replica that several hosts' files name) an existing replica's
    /// selection and enabled state stand. IsNew is true for a new row (xmax = 0); Changed when an existing row was
    /// enabled or its selection changed.
    /// </summary>
    public const string RegisterReplica = $"""
        with before as (select enabled, hosts, include, exclude from replicas where host = @Host and url = @Url)
        insert into replicas as r (url, kind, enabled, disabled_by, host, hosts, include, exclude, include_regex, exclude_regex, backfill_pending)
        values (@Url, @Kind, @Enabled, case when @Enabled then null else 'configuration' end,
                @Host, @Hosts, @Include, @Exclude, @IncludeRegex, @ExcludeRegex, @Enabled)
        on conflict (host, url) do update
           set backfill_pending = r.backfill_pending
                   or not r.enabled and case when @KeepSelection then false else {EnabledAfter} end
                   or not @KeepSelection and (r.hosts, r.include, r.exclude) is distinct from (excluded.hosts, excluded.include, excluded.exclude),
               enabled = case when @KeepSelection then r.enabled else {EnabledAfter} end,
               disabled_by = case when @KeepSelection then r.disabled_by when {EnabledAfter} then null
                                  when excluded.enabled then r.disabled_by else coalesce(r.disabled_by, 'configuration') end,
               hosts = case when @KeepSelection then r.hosts else excluded.hosts end,
               include = case when @KeepSelection then r.include else excluded.include end,
               exclude = case when @KeepSelection then r.exclude else excluded.exclude end,
               include_regex = case when @KeepSelection then r.include_regex else excluded.include_regex end,
               exclude_regex = case when @KeepSelection then r.exclude_regex else excluded.exclude_regex end
        returning {ReplicaColumns}, (xmax = 0) as IsNew,
                  coalesce((select (not b.enabled and r.enabled) or (b.hosts, b.include, b.exclude) is distinct from (r.hosts, r.include, r.exclude)
                              from before b), false) as Changed
        """;

    /// <summary>
    /// The size of a backlog: from the counts where it is narrowed by replica and host only, else the
    /// Backlog query counted (a path prefix reads the backlog's rows, not every origin file).
    /// </summary>
    public const string BacklogSize = $"""
        select sum(files)::bigint as Files, sum(bytes)::bigint as Bytes from (
            select count(*) as files, coalesce(sum(b.size_bytes), 0) as bytes
              from replica_backlog b join replicas r on r.id = b.replica_id
             where @PathPrefix::text is not null and {BacklogFilter}
            union all
            select coalesce(sum(b.behind), 0), coalesce(sum(b.bytes_behind), 0)
              from replica_counts b join replicas r on r.id = b.replica_id
             where @PathPrefix::text is null and {PairFilter}
        ) t
        """;

    /// <summary>
    /// One row per replica: what is in sync, what is behind, and since when. Exact, from what the
    /// database keeps in the transactions that change files and copies: the counts, the oldest row of
    /// the backlog, the newest copy (each by an index).
    /// </summary>
    public const string ReplicaStatus = """
        select r.id as Id, r.url as Url, r.kind as Kind, r.enabled as Enabled, r.host as Host, r.unflushed as Unflushed,
               coalesce(c.selected - c.behind, 0) as FilesInSync, coalesce(c.behind, 0) as FilesBehind, coalesce(c.bytes_behind, 0) as BytesBehind,
               (select min(b.mtime) from replica_backlog b where b.replica_id = r.id) as OldestBehind,
               (select max(copied_at) from file_replicas last where last.replica_id = r.id) as LastCopy
          from replicas r
          left join (select replica_id, sum(selected)::bigint as selected, sum(behind)::bigint as behind, sum(bytes_behind)::bigint as bytes_behind
                       from replica_counts group by replica_id) c on c.replica_id = r.id
         order by r.id
        """;

    /// <summary>One row per (enabled replica, origin host it selects files of): each pair has a queue and a backlog of its own.</summary>
    public const string PairStatus = """
        select c.replica_id as ReplicaId, c.origin_host as OriginHost,
               sum(c.behind)::bigint as FilesBehind, sum(c.bytes_behind)::bigint as BytesBehind
          from replica_counts c join replicas r on r.id = c.replica_id
         where r.enabled
         group by c.replica_id, c.origin_host
        having sum(c.selected) > 0
         order by c.replica_id, c.origin_host
        """;

    /// <summary>Folds the counts' rows of changes into one per pair (they add up either way).</summary>
    public const string CompactCounts = "select compact_replica_counts()";

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
    public const string NeedsForCopies = $"""
        select {NeedColumns}
          from unnest(@Hosts::text[], @Paths::text[]) as k (origin_host, origin_path)
          join file_origins o on o.origin_host = k.origin_host and o.origin_path = k.origin_path
          join replicas r on r.id = @ReplicaId
         where o.missing_since is null
        """;

    public const string DisableReplica = """
        update replicas set enabled = false, disabled_by = 'operator' where id = @Id and (enabled or disabled_by is distinct from 'operator')
        """;

    /// <summary>Enabled replicas whose back-fill is yet to be announced.</summary>
    /// <summary>
    /// The backlog and counts the database keeps for one replica, against the direct computation from
    /// the origins and copies themselves (as before migration 009): in one snapshot they agree exactly,
    /// since the triggers change them in the same transactions. Reads every origin file the replica selects.
    /// </summary>
    public const string BacklogDrift = """
        with selected as materialized (
            select o.origin_host, o.origin_path, o.mtime, o.size_bytes,
                   fr.replica_id is null or fr.mtime <> o.mtime or fr.size_bytes <> o.size_bytes as behind
              from replicas r join file_origins o on o.missing_since is null and replica_selects(r, o.origin_host, o.origin_path)
              left join file_replicas fr on fr.replica_id = r.id and fr.origin_host = o.origin_host and fr.origin_path = o.origin_path
             where r.id = @ReplicaId
        ), direct as (
            select origin_host, origin_path, mtime, size_bytes from selected where behind
        ), kept as (
            select origin_host, origin_path, mtime, size_bytes from replica_backlog where replica_id = @ReplicaId
        ), counted as (
            select coalesce(sum(selected), 0)::bigint as selected, coalesce(sum(behind), 0)::bigint as behind, coalesce(sum(bytes_behind), 0)::bigint as bytes
              from replica_counts where replica_id = @ReplicaId
        ), computed as (
            select count(*) as selected, count(*) filter (where behind) as behind, coalesce(sum(size_bytes) filter (where behind), 0) as bytes from selected
        )
        select (select count(*) from (select * from direct except select * from kept) d) as Lacking,
               (select count(*) from (select * from kept except select * from direct) k) as Wrong,
               (c.selected, c.behind, c.bytes) is distinct from (m.selected, m.behind, m.bytes) as CountsOff
          from counted c, computed m
        """;

    public const string RebuildBacklog = "select rebuild_replica_backlog(@ReplicaId)";

    public const string PendingBackfills = $"select {ReplicaColumns} from replicas where backfill_pending and enabled order by id";

    public const string BackfillAnnounced = "update replicas set backfill_pending = false where id = @Id";

    public const string PendingResyncs = "select reason from pending_resyncs order by requested_at";

    public const string ResyncDone = "delete from pending_resyncs where reason = @Reason";

    /// <summary>
    /// Forgets a replica and what it holds; never touches a file. Its records' deletion is no change
    /// of its backlog (replica_forgotten), which goes with it.
    /// </summary>
    public const string PurgeReplica = """
        select set_config('xtelemdb.forgetting_replica', @Id::text, true);
        delete from replica_backlog where replica_id = @Id;
        delete from replica_counts where replica_id = @Id;
        delete from file_replicas where replica_id = @Id;
        delete from replicas where id = @Id;
        """;
}
