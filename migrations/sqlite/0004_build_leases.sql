-- A build belongs to the node holding its lease, renewed while it works;
-- a node that finds an expired lease on a building version (its owner
-- died) takes it over, and gives up after a few attempts.
ALTER TABLE strategy_versions ADD COLUMN build_lease_until BIGINT;
ALTER TABLE strategy_versions ADD COLUMN build_attempts INTEGER NOT NULL DEFAULT 0;
-- 'source' (built here from Python) or 'component' (uploaded prebuilt).
ALTER TABLE strategy_versions ADD COLUMN origin TEXT NOT NULL DEFAULT 'source';
CREATE INDEX strategy_versions_building ON strategy_versions (status, build_lease_until);
