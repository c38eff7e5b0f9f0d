-- verify looks files found on a replica up by their path.
create index file_replicas_path on file_replicas (replica_id, replica_path);
