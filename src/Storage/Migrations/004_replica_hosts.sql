-- A replica is one folder on one host. Until now a local replica was named by its path alone,
-- and every host's replicator wrote its own files into a folder of that path on its own disk.

-- The host of each replica: an ssh:// replica's is the host of its URL; a local replica's is the
-- host that registered it, the host running this migration ($registering_host$).
alter table replicas add column host text;
update replicas set host = substring(url from '^ssh://(?:[^@/]*@)?([^:/]+)') where kind = 'ssh';
update replicas set host = '$registering_host$' where kind = 'local';
alter table replicas alter column host set not null;
alter table replicas drop constraint replicas_url_key;
alter table replicas add constraint replicas_host_url_key unique (host, url);

-- Why a replica is disabled: 'operator' (remove_replica; a TOML file does not undo it),
-- 'migration' (below; the host's own TOML file naming the folder enables it), 'configuration'.
alter table replicas add column disabled_by text;
update replicas set disabled_by = 'operator' where not enabled;

-- Copies of another host's files recorded on a local replica were written by that host's
-- replicator into the same path on its own disk: they are on that host's folder, so they are
-- recorded there, on a replica of its own, disabled until that host's TOML file names the folder
-- (as it did) or an operator runs add_replica there. The registering host's folder never had
-- them: they are copied to it now.
insert into replicas (url, kind, enabled, disabled_by, host)
select distinct r.url, 'local', false, 'migration', fr.origin_host
  from file_replicas fr join replicas r on r.id = fr.replica_id
 where r.kind = 'local' and fr.origin_host <> r.host
on conflict (host, url) do nothing;
update file_replicas fr
   set replica_id = own.id
  from replicas r, replicas own
 where fr.replica_id = r.id and r.kind = 'local' and fr.origin_host <> r.host
   and own.kind = 'local' and own.url = r.url and own.host = fr.origin_host;

-- What a replica receives: origin hosts (null: all), include and exclude patterns as written,
-- and as regular expressions the queries use.
alter table replicas add column hosts text[];
alter table replicas add column include text[] not null default '{}';
alter table replicas add column exclude text[] not null default '{}';
alter table replicas add column include_regex text;
alter table replicas add column exclude_regex text;

-- A replica registered, enabled again or selecting otherwise is to be back-filled: kept here until
-- the announcement is confirmed by the broker, so that a broker down at that moment loses nothing.
alter table replicas add column backfill_pending boolean not null default false;

-- Local replicas' queues are renamed with their host: what waited in the old queues is asked for
-- again by a resync, which the inventory runs at its next start, whoever ran this migration.
create table pending_resyncs (
    reason        text        primary key,
    requested_at  timestamptz not null default now()
);
insert into pending_resyncs (reason)
select 'replicas gained hosts: local replicas'' queues are renamed' where exists (select 1 from replicas);
