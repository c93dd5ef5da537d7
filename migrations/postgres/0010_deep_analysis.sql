-- Deep analysis runs: the YAML metrics evaluated over the campaign's
-- conversation transcripts by the campaign's LLM. A run is leased by one
-- node at a time (lease_until); each (session, metric) value is written
-- once per run, so a run resumed after a restart skips what is done.
-- metrics is the JSON list of the metric definitions the run computes (all
-- of the YAML's for a recalculation, only those without values for a
-- continuation), copied when the run starts so a YAML uploaded meanwhile
-- does not change a run halfway. The run covers sessions that ended in
-- [since, created_at]; every session before the cursor (session_ended_at,
-- id) is complete, so a batch does not rescan the finished ones.
CREATE TABLE analysis_runs (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    metrics TEXT NOT NULL,
    since BIGINT NOT NULL,
    total BIGINT NOT NULL DEFAULT 0,
    done BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    lease_until BIGINT,
    cursor_ended_at BIGINT,
    cursor_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX analysis_runs_campaign ON analysis_runs (tenant_id, campaign_id, created_at);
CREATE INDEX analysis_runs_active ON analysis_runs (status, lease_until);
-- At most one run in progress per campaign, whichever node starts it.
CREATE UNIQUE INDEX analysis_runs_one_in_progress ON analysis_runs (campaign_id) WHERE status = 'PROGRESS';

-- One metric's value for one session. value is JSON (true, 3, "angry", or
-- null when the conversation does not tell); error says why the LLM gave
-- no valid value, and the run goes on. run_id is the run that wrote it.
CREATE TABLE analysis_values (
    communication_id TEXT NOT NULL REFERENCES communications(id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    value TEXT,
    error TEXT,
    computed_at BIGINT NOT NULL,
    PRIMARY KEY (communication_id, metric)
);
CREATE INDEX analysis_values_campaign ON analysis_values (tenant_id, campaign_id, metric);

-- The sessions a run covers: a campaign's, by when they ended.
CREATE INDEX communications_ended ON communications (campaign_id, session_ended_at);
