-- Daily quotas (strategy fuel, outbound HTTP calls; read from
-- usage_daily) and a storage quota in MiB: NULL is the node's default,
-- 0 unlimited, as for contacts and campaigns.
ALTER TABLE tenant_quotas ADD COLUMN fuel_per_day BIGINT;
ALTER TABLE tenant_quotas ADD COLUMN http_calls_per_day BIGINT;
ALTER TABLE tenant_quotas ADD COLUMN storage_mib BIGINT;
