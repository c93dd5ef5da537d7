-- A node queues the imports it cannot start yet (`status = 'queued'`, the
-- file spooled in its data directory) and starts them as its slots free
-- up, taking tenants in turn: it reads its own queued and running jobs.
-- `started_at`: when a job left the queue (jobs from before: their creation).
ALTER TABLE import_jobs ADD COLUMN started_at BIGINT;
UPDATE import_jobs SET started_at = created_at;
CREATE INDEX import_jobs_node ON import_jobs (node_id, status);
