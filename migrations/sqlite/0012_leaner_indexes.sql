-- Partial indexes on communications, as on PostgreSQL (see its 0012 for
-- why), where SQLite's planner can use them: it proves an index's WHERE
-- only from the query's AND-ed terms (and `x IS NOT NULL` from a
-- comparison on x), not from ORs or IN lists. So `communications_due` and
-- `communications_campaign`, whose queries OR their conditions, stay whole
-- here. SQLite rewrites only the indexes whose columns an update changes.

DROP INDEX communications_sessions;
CREATE INDEX communications_sessions ON communications (session_ended_at)
    WHERE session_ended_at IS NOT NULL AND aggregated_at IS NULL;

DROP INDEX communications_open_tasks;
CREATE INDEX communications_open_tasks ON communications (tenant_id, start_date)
    WHERE channel = 'HUMAN' AND status = 'IN_PROGRESS' AND session_ended_at IS NULL;

DROP INDEX communications_session_address;
CREATE INDEX communications_session_address ON communications (integration_id, session_address) WHERE integration_id IS NOT NULL;
DROP INDEX communications_provider_ref;
CREATE INDEX communications_provider_ref ON communications (integration_id, provider_ref) WHERE integration_id IS NOT NULL;

DROP INDEX communications_ended;
CREATE INDEX communications_ended ON communications (campaign_id, session_ended_at) WHERE session_ended_at IS NOT NULL;

-- Every contact write also went into an index that is a prefix of
-- contacts_panel (0008), which serves the same lookups.
DROP INDEX contacts_stage;
