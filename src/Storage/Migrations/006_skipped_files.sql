-- What each watcher found under its roots and does not back up (a FIFO, a device, a name that is
-- not valid UTF-8, a folder it may not read), as of its last full poll: verify lists it, so that
-- nothing is skipped in silence. path is as the watcher names it (bytes not UTF-8 as \xNN).
create table skipped_files (
    origin_host text not null,
    path text not null,
    reason text not null,
    first_seen timestamptz not null,
    last_seen timestamptz not null,
    primary key (origin_host, path)
);
