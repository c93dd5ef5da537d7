-- Every strategy invocation: outcome, log and usage, kept for the
-- retention period (`--invocation-retention-days`) and shown in a
-- contact's history, an import's report and per strategy version. The
-- input is kept for every failed call and a sample of the others, so
-- `stratagem strategy replay` can run it again.
CREATE TABLE strategy_invocations (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    hook TEXT NOT NULL,
    component_hash TEXT NOT NULL,
    object_id TEXT NOT NULL,
    import_job_id TEXT,
    started_at BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    message TEXT,
    logs TEXT NOT NULL,
    dropped_log_records BIGINT NOT NULL,
    fuel BIGINT NOT NULL,
    peak_memory_bytes BIGINT NOT NULL,
    duration_us BIGINT NOT NULL,
    http_calls BIGINT NOT NULL,
    input TEXT,
    output TEXT,
    limits TEXT,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX strategy_invocations_contact ON strategy_invocations (tenant_id, campaign_id, object_id, started_at);
CREATE INDEX strategy_invocations_version ON strategy_invocations (tenant_id, campaign_id, hook, component_hash, started_at);
CREATE INDEX strategy_invocations_recorded ON strategy_invocations (recorded_at);
