-- Stages, agents and integrations keep their validated definitions as JSON:
-- the domain crate owns their shape, the columns here are what queries
-- filter or order on.
CREATE TABLE stages (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL REFERENCES campaigns(id),
    position BIGINT NOT NULL,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- Strategies plan communications by stage name, so names are unique.
CREATE UNIQUE INDEX stages_campaign_name ON stages (tenant_id, campaign_id, name);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    status TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX agents_tenant_status ON agents (tenant_id, status);

-- `secrets` is an XChaCha20-Poly1305 sealed JSON object bound to the
-- tenant and row id; only the names of the secrets are stored in clear.
CREATE TABLE integrations (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    settings TEXT NOT NULL,
    secret_names TEXT NOT NULL,
    secrets TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX integrations_tenant ON integrations (tenant_id);
