-- When a watcher last reported the file, changed or not: a start-up scan that did not report a
-- present row finds it by this column, and the inventory marks it missing.
alter table file_origins add column seen_at timestamptz;
