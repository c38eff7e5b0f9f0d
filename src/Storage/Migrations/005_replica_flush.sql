-- Why a replica's copies are not flushed to its disk when they are recorded (an SFTP server
-- without fsync@openssh.com), as its replicator last found; null where they are flushed or no
-- copy was made yet. replica_list and /health say so.
alter table replicas add column unflushed text;
