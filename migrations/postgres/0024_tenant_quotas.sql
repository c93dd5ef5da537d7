-- What each tenant may hold, set by the operator (`stratagem tenant
-- quota`): NULL is the node's default (`serve --quota-…`), 0 unlimited.
CREATE TABLE tenant_quotas (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    contacts BIGINT,
    campaigns BIGINT
);
