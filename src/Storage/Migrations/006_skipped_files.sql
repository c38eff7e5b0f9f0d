-- What each watcher found under its roots and does not back up (a FIFO, a device, a name that is
-- not valid UTF-8, a folder it may not read), as of its last full poll: verify lists it, so that
-- nothing is skipped in silence. path is as the watcher names it (bytes not UTF-8 as \xNN);
-- folder: everything below it is skipped too.
create table skipped_files (
    origin_host text not null,
    path text not null,
    reason text not null,
    folder boolean not null,
    first_seen timestamptz not null,
    last_seen timestamptz not null,
    primary key (origin_host, path)
);

-- The newest list applied per host: a list delayed by a retry never overwrites a newer one.
create table skipped_lists (
    origin_host text primary key,
    seen_at timestamptz not null
);
