-- The rolling fixity check: when each copy's bytes were last read back and found to hash to its
-- recorded checksum (null: not since it was copied, at copied_at), and when they were found not to
-- and could not be repaired. A new copy recorded clears both. The index serves "the copies checked
-- longest ago" per replica, which is the order the check reads them in.
alter table file_replicas add column checked_at timestamptz, add column damaged_at timestamptz;
create index file_replicas_fixity on file_replicas (replica_id, (coalesce(checked_at, copied_at))) where damaged_at is null;
