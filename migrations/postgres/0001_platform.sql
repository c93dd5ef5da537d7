CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Only a SHA-256 of the secret is kept; the key is shown once.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    error_reason TEXT,
    llm_model TEXT,
    result_fields TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX campaigns_tenant_status ON campaigns (tenant_id, status);

CREATE TABLE strategies (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    campaign_id TEXT NOT NULL REFERENCES campaigns(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    latest_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
-- One strategy per type per campaign: a new upload is a new version.
CREATE UNIQUE INDEX strategies_campaign_kind ON strategies (tenant_id, campaign_id, kind);

CREATE TABLE strategy_versions (
    strategy_id TEXT NOT NULL REFERENCES strategies(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    tenant_id TEXT NOT NULL,
    entry TEXT NOT NULL,
    sources TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    component BYTEA,
    component_hash TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (strategy_id, version)
);

CREATE TABLE contacts (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL REFERENCES campaigns(id),
    object_id TEXT NOT NULL,
    external_id TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    phone TEXT NOT NULL,
    parameters TEXT NOT NULL,
    current_stage TEXT,
    internal_data TEXT NOT NULL,
    results TEXT NOT NULL,
    result_flag BIGINT,
    result_datetime BIGINT,
    communication_count BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- object_id leads: lookups by object id must never scan a campaign, even
-- when the planner's statistics are stale (measured: quadratic imports).
CREATE UNIQUE INDEX contacts_object ON contacts (object_id, campaign_id, tenant_id);
CREATE INDEX contacts_stage ON contacts (tenant_id, campaign_id, current_stage);

CREATE TABLE communications (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    name TEXT NOT NULL,
    stage_name TEXT NOT NULL,
    start_date BIGINT NOT NULL,
    end_date BIGINT,
    status TEXT NOT NULL,
    status_detail TEXT,
    status_updated_at BIGINT,
    flagged BIGINT NOT NULL,
    alternative TEXT,
    parameters TEXT NOT NULL
);
CREATE INDEX communications_contact ON communications (contact_id, position);
CREATE INDEX communications_due ON communications (status, start_date);

CREATE TABLE import_jobs (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL REFERENCES campaigns(id),
    status TEXT NOT NULL,
    file_name TEXT,
    total_rows BIGINT NOT NULL,
    processed_rows BIGINT NOT NULL,
    accepted BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    report TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX import_jobs_campaign ON import_jobs (tenant_id, campaign_id);
