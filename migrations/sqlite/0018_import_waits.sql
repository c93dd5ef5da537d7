-- An import into a campaign whose DATA_LOAD strategy is still building
-- waits for it: `blocked_by` says what it waits for while it is `running`,
-- and why it stopped when that build failed (`interrupted_reason`
-- `strategy_failed`).
ALTER TABLE import_jobs ADD COLUMN blocked_by TEXT;
