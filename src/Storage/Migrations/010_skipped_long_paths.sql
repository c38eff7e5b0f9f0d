-- An entry is known by a hash of its path, not by the path: a path longer than a btree entry
-- (about 2700 bytes once compressed; Linux allows 4096) is the very thing the inventory cannot
-- record in file_origins, and the watcher lists it here so that verify names it.
alter table skipped_files drop constraint skipped_files_pkey;
create unique index skipped_files_key on skipped_files (origin_host, md5(path));
