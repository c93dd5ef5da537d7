-- What each tenant consumed per UTC day (days since 1970-01-01), kept
-- for billing beyond the invocations' retention: invocations and fuel by
-- hook, LLM tokens by use. Imports and messages are counted from their
-- own tables (import_jobs, channel_sends).
CREATE TABLE usage_daily (
    tenant_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    metric TEXT NOT NULL,
    dimension TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day, metric, dimension)
);
CREATE INDEX channel_sends_tenant_time ON channel_sends (tenant_id, created_at);
CREATE INDEX import_jobs_tenant_time ON import_jobs (tenant_id, created_at);
