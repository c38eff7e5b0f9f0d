-- What each replica lacks, kept by the database in the transactions that change files, copies and
-- selections, so that replica_list, the backlog gauges and a resync read it instead of joining
-- every origin file with every copy (3 s at a million files, far more at ten million).
--
-- replica_backlog: one row per (replica, present origin file it selects but holds no copy of at
-- that version), enabled or not; the backlog a resync sends is its enabled replicas' rows.
-- replica_counts: per (replica, origin host), the files it selects and those behind, as rows of
-- changes that add up (one per statement and pair, never a counter updated in place, which every
-- concurrent ingest would queue on); compact_replica_counts() folds them.
-- Neither has a foreign key to replicas: each insert would lock the replica's row for key share,
-- and every ingest at once on the same two rows makes multixacts. remove_replica --purge forgets them.
create table replica_backlog (
    replica_id   integer     not null,
    origin_host  text        not null,
    origin_path  text        not null,
    mtime        timestamptz not null,
    size_bytes   bigint      not null,
    primary key (replica_id, origin_host, origin_path)
);
-- The oldest file a replica lacks.
create index replica_backlog_oldest on replica_backlog (replica_id, mtime);

create table replica_counts (
    replica_id    integer not null,
    origin_host   text    not null,
    selected      bigint  not null default 0,
    behind        bigint  not null default 0,
    bytes_behind  bigint  not null default 0
);
create index replica_counts_pair on replica_counts (replica_id, origin_host);

-- A replica's last copy, without reading all its records.
create index file_replicas_last_copy on file_replicas (replica_id, copied_at);

-- The replica receives this origin file: its host is selected, an include pattern matches, no exclude does (Sql.Selects).
create function replica_selects(r replicas, host text, path text) returns boolean
language sql stable as $$
    select (r.hosts is null or host = any(r.hosts))
       and (r.include_regex is null or path ~ r.include_regex)
       and (r.exclude_regex is null or path !~ r.exclude_regex)
$$;

-- The replica remove_replica --purge is forgetting in this transaction: its records' deletion changes no backlog.
create function replica_forgotten() returns integer
language sql stable as $$ select nullif(current_setting('xtelemdb.forgetting_replica', true), '')::integer $$;

-- Sets what every replica lacks of these origin files, given as they are now (each once, its row
-- locked by this transaction, so that no other can change it or record a copy of it meanwhile).
create function refresh_replica_backlog(hosts text[], paths text[], mtimes timestamptz[], sizes bigint[], present boolean[]) returns void
language plpgsql as $$
declare
    forgotten constant integer := replica_forgotten();
begin
    -- Each (replica, file) asked about, looked up by its keys (the backlog's primary key begins with
    -- the replica); the replicas holding a file at its version are read once for all of them.
    with asked as (
        select r.id as replica_id, o.origin_host, o.origin_path, o.mtime, o.size_bytes,
               o.present and replica_selects(r, o.origin_host, o.origin_path) and r.id is distinct from forgotten
               and r.id <> all(held.replicas) as behind
          from unnest(hosts, paths, mtimes, sizes, present) as o (origin_host, origin_path, mtime, size_bytes, present)
          cross join lateral (select coalesce(array_agg(fr.replica_id), '{}') as replicas from file_replicas fr
                               where fr.origin_host = o.origin_host and fr.origin_path = o.origin_path
                                 and fr.mtime = o.mtime and fr.size_bytes = o.size_bytes) held
          cross join replicas r
    ), gone as (
        delete from replica_backlog b using asked a
         where not a.behind and b.replica_id = a.replica_id and b.origin_host = a.origin_host and b.origin_path = a.origin_path
    )
    insert into replica_backlog as b select replica_id, origin_host, origin_path, mtime, size_bytes from asked where behind
    on conflict (replica_id, origin_host, origin_path) do update set mtime = excluded.mtime, size_bytes = excluded.size_bytes
     where (b.mtime, b.size_bytes) is distinct from (excluded.mtime, excluded.size_bytes);
end $$;

-- The same for origin files named by their keys, whose copies changed: their rows are locked first
-- (in the order of their bytes, as the inventory sorts what it writes) and read as they are then. A
-- copy recorded while its origin moves on waits for the other transaction to commit and then sees
-- both, where two snapshots would each decide from half the truth.
create function refresh_replica_backlog(hosts text[], paths text[]) returns void
language plpgsql as $$
begin
    perform refresh_replica_backlog(array_agg(origin_host), array_agg(origin_path), array_agg(mtime), array_agg(size_bytes), array_agg(missing_since is null))
       from (select o.origin_host, o.origin_path, o.mtime, o.size_bytes, o.missing_since
               from file_origins o join (select distinct h, p from unnest(hosts, paths) as k (h, p)) k on o.origin_host = k.h and o.origin_path = k.p
              order by o.origin_host collate "C", o.origin_path collate "C" for no key update of o) locked
     having count(*) > 0;
end $$;

-- New origin files: the replicas that select them lack them (no copy can be recorded before its
-- origin). Each (file, replica) selected once, for the backlog and the count.
create function origins_added() returns trigger
language plpgsql as $$
begin
    with selected as materialized (
        select r.id as replica_id, a.origin_host, a.origin_path, a.mtime, a.size_bytes
          from added a join replicas r on replica_selects(r, a.origin_host, a.origin_path)
         where a.missing_since is null
    ), lacking as (
        insert into replica_backlog (replica_id, origin_host, origin_path, mtime, size_bytes) select * from selected
    )
    insert into replica_counts (replica_id, origin_host, selected)
    select replica_id, origin_host, count(*) from selected group by replica_id, origin_host;
    return null;
end $$;

-- A new version, a file gone missing or back; an observation that changes neither (seen_at) changes
-- nothing here. The rows this statement updated are locked by it and read from its transition table:
-- neither locked nor looked up again.
create function origins_changed() returns trigger
language plpgsql as $$
begin
    perform refresh_replica_backlog(array_agg(n.origin_host), array_agg(n.origin_path), array_agg(n.mtime), array_agg(n.size_bytes),
                                    array_agg(n.missing_since is null))
       from after_rows n join before_rows o on o.origin_host = n.origin_host and o.origin_path = n.origin_path
      where (o.mtime, o.size_bytes, o.missing_since is null) is distinct from (n.mtime, n.size_bytes, n.missing_since is null)
     having count(*) > 0;
    insert into replica_counts (replica_id, origin_host, selected)
    select r.id, n.origin_host, sum(case when n.missing_since is null then 1 else -1 end)
      from after_rows n join before_rows o on o.origin_host = n.origin_host and o.origin_path = n.origin_path
      join replicas r on replica_selects(r, n.origin_host, n.origin_path)
     where (o.missing_since is null) <> (n.missing_since is null)
     group by r.id, n.origin_host;
    return null;
end $$;

-- A copy recorded, or its record forgotten (a move, a fixity check's missing copy): the same function for both, on the rows touched.
create function copies_added_or_forgotten() returns trigger
language plpgsql as $$
begin
    perform refresh_replica_backlog(array_agg(origin_host), array_agg(origin_path)) from touched
      where replica_id is distinct from replica_forgotten() having count(*) > 0;
    return null;
end $$;

-- A copy recorded at another version; checksums and fixity checks change nothing here.
create function copies_changed() returns trigger
language plpgsql as $$
begin
    perform refresh_replica_backlog(array_agg(n.origin_host), array_agg(n.origin_path))
       from after_rows n join before_rows o on o.replica_id = n.replica_id and o.origin_host = n.origin_host and o.origin_path = n.origin_path
      where (o.mtime, o.size_bytes) is distinct from (n.mtime, n.size_bytes) and n.replica_id is distinct from replica_forgotten()
     having count(*) > 0;
    return null;
end $$;

-- Rows of the backlog added or removed: files and bytes behind, counted up or down.
create function backlog_added_or_removed() returns trigger
language plpgsql as $$
begin
    insert into replica_counts (replica_id, origin_host, behind, bytes_behind)
    select replica_id, origin_host, sign * count(*), sign * sum(size_bytes)
      from touched, (values (case when TG_OP = 'DELETE' then -1 else 1 end)) as s (sign)
     group by replica_id, origin_host, sign;
    return null;
end $$;

create function backlog_changed() returns trigger
language plpgsql as $$
begin
    insert into replica_counts (replica_id, origin_host, bytes_behind)
    select n.replica_id, n.origin_host, sum(n.size_bytes - o.size_bytes)
      from after_rows n join before_rows o on o.replica_id = n.replica_id and o.origin_host = n.origin_host and o.origin_path = n.origin_path
     group by n.replica_id, n.origin_host having sum(n.size_bytes - o.size_bytes) <> 0;
    return null;
end $$;

-- Folds the rows of changes into one row per pair. One at a time (and never beside a rebuild): two
-- that deleted the same rows could not both add up what they took.
create function compact_replica_counts() returns void
language plpgsql as $$
begin
    perform pg_advisory_xact_lock(hashtext('replica_counts'));
    with taken as (delete from replica_counts returning *)
    insert into replica_counts (replica_id, origin_host, selected, behind, bytes_behind)
    select replica_id, origin_host, sum(selected), sum(behind), sum(bytes_behind) from taken group by replica_id, origin_host;
end $$;

-- A replica registered or selecting otherwise: its backlog and counts computed afresh. Files and
-- copies wait meanwhile (share locks), so that no change is counted against the old selection.
create function rebuild_replica_backlog(replica integer) returns void
language plpgsql as $$
begin
    lock table file_origins, file_replicas in share mode;
    perform pg_advisory_xact_lock(hashtext('replica_counts'));
    delete from replica_backlog where replica_id = replica;
    delete from replica_counts where replica_id = replica;
    insert into replica_backlog (replica_id, origin_host, origin_path, mtime, size_bytes)
    select r.id, o.origin_host, o.origin_path, o.mtime, o.size_bytes
      from replicas r join file_origins o on o.missing_since is null and replica_selects(r, o.origin_host, o.origin_path)
      left join file_replicas fr on fr.replica_id = r.id and fr.origin_host = o.origin_host and fr.origin_path = o.origin_path
     where r.id = replica and (fr.replica_id is null or fr.mtime <> o.mtime or fr.size_bytes <> o.size_bytes);
    insert into replica_counts (replica_id, origin_host, selected)
    select r.id, o.origin_host, count(*)
      from replicas r join file_origins o on o.missing_since is null and replica_selects(r, o.origin_host, o.origin_path)
     where r.id = replica
     group by r.id, o.origin_host;
end $$;

create function replica_registered() returns trigger
language plpgsql as $$
begin
    perform rebuild_replica_backlog(new.id);
    return null;
end $$;

-- The counts follow the backlog's rows, from the back-fill on.
create trigger backlog_added after insert on replica_backlog referencing new table as touched
    for each statement execute function backlog_added_or_removed();
create trigger backlog_changed after update on replica_backlog referencing old table as before_rows new table as after_rows
    for each statement execute function backlog_changed();
create trigger backlog_removed after delete on replica_backlog referencing old table as touched
    for each statement execute function backlog_added_or_removed();

-- The backlog as this release's queries computed it, for every replica there is.
do $$
declare
    replica integer;
begin
    for replica in select id from replicas order by id loop
        perform rebuild_replica_backlog(replica);
    end loop;
end $$;

-- Files, copies and selections keep the backlog from now on.
create trigger origins_added after insert on file_origins referencing new table as added
    for each statement execute function origins_added();
create trigger origins_changed after update on file_origins referencing old table as before_rows new table as after_rows
    for each statement execute function origins_changed();
create trigger copies_added after insert on file_replicas referencing new table as touched
    for each statement execute function copies_added_or_forgotten();
create trigger copies_changed after update on file_replicas referencing old table as before_rows new table as after_rows
    for each statement execute function copies_changed();
create trigger copies_forgotten after delete on file_replicas referencing old table as touched
    for each statement execute function copies_added_or_forgotten();
create trigger replica_registered after insert on replicas
    for each row execute function replica_registered();
create trigger replica_selects_otherwise after update of hosts, include_regex, exclude_regex on replicas
    for each row when ((old.hosts, old.include_regex, old.exclude_regex) is distinct from (new.hosts, new.include_regex, new.exclude_regex))
    execute function replica_registered();

analyze replica_backlog;
analyze replica_counts;
