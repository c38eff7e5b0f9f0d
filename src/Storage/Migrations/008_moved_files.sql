-- A file moved on its origin (into a day folder) appears as a new path with the same file name,
-- size and mtime as a path of the same host that vanished (or is about to be reported gone): the
-- inventory looks that one up by host and file name, so that a replica's copy is renamed rather
-- than copied again. On origin_path only, which an update never changes: a present file's new
-- version stays a HOT update (an index on mtime would cost every growing file's update an index write).
create index file_origins_by_name on file_origins (origin_host, (split_part(origin_path, '/', -1)));
