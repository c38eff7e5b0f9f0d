-- The replica set: a replica is named by its URL.
create table replicas (
    id        integer generated always as identity primary key,
    url       text        not null unique,
    kind      text        not null check (kind in ('local', 'ssh')),
    enabled   boolean     not null default true,
    added_at  timestamptz not null default now()
);

-- One row per origin file; (mtime, size_bytes) is its version.
-- observed_at orders observations, so a stale or duplicate event never moves a row backwards.
create table file_origins (
    origin_host    text        not null,
    origin_path    text        not null,
    mtime          timestamptz not null,
    size_bytes     bigint      not null check (size_bytes >= 0),
    observed_at    timestamptz not null,
    first_seen     timestamptz not null default now(),
    -- Set when the file vanished from its origin; its replicas stay.
    missing_since  timestamptz,
    primary key (origin_host, origin_path)
);

-- The version each replica holds; copied_at orders reports of one file.
create table file_replicas (
    replica_id    integer     not null references replicas (id),
    origin_host   text        not null,
    origin_path   text        not null,
    mtime         timestamptz not null,
    size_bytes    bigint      not null check (size_bytes >= 0),
    replica_path  text        not null,
    checksum      text,
    copied_at     timestamptz not null,
    primary key (replica_id, origin_host, origin_path),
    foreign key (origin_host, origin_path) references file_origins (origin_host, origin_path)
);

-- The origin side of the backlog join, and the foreign key's lookups, by origin.
create index file_replicas_origin on file_replicas (origin_host, origin_path);
-- Resync narrows by host and path prefix over present files only.
create index file_origins_present on file_origins (origin_host, origin_path text_pattern_ops) where missing_since is null;
