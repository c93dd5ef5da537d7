-- An import belongs to the node (one `serve` process) that received it:
-- `node_id` names the process and `heartbeat_at` is renewed while it
-- works (and with every batch it writes). A job still `running` whose
-- heartbeat lapsed, or on SQLite any left by an earlier process, is
-- marked `interrupted`, with why in `interrupted_reason`.
ALTER TABLE import_jobs ADD COLUMN node_id TEXT;
ALTER TABLE import_jobs ADD COLUMN heartbeat_at BIGINT;
ALTER TABLE import_jobs ADD COLUMN interrupted_reason TEXT;
CREATE INDEX import_jobs_running ON import_jobs (status, heartbeat_at);
