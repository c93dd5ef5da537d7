-- Deep Analysis runs on its own, as the YAML's `schedule` says: every
-- `analysis_every_minutes` (NULL: `schedule: off`, or no YAML), next at
-- `analysis_next_at`, which the node that starts a scheduled run moves on.
ALTER TABLE campaigns ADD COLUMN analysis_every_minutes BIGINT;
ALTER TABLE campaigns ADD COLUMN analysis_next_at BIGINT;
-- Files uploaded before could not say `schedule`: they get the default,
-- hourly.
UPDATE campaigns SET analysis_every_minutes = 60, analysis_next_at = analytics_updated_at + 3600000000
    WHERE analytics_yaml IS NOT NULL AND analytics_updated_at IS NOT NULL;
CREATE INDEX campaigns_analysis_due ON campaigns (analysis_next_at) WHERE analysis_next_at IS NOT NULL;

-- A run the schedule started, and the sessions within its depth it could
-- not analyse because they have no transcript.
ALTER TABLE analysis_runs ADD COLUMN scheduled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE analysis_runs ADD COLUMN skipped BIGINT NOT NULL DEFAULT 0;
