-- Fair claims (issue 22): as on PostgreSQL (see its 0026 for why), with
-- `communications_campaign` whole, as before here (SQLite's planner does
-- not prove its PostgreSQL predicate, an OR).

DROP INDEX communications_campaign;
CREATE INDEX communications_campaign ON communications (campaign_id, status, start_date);

DROP INDEX communications_sessions;
CREATE INDEX communications_sessions ON communications (campaign_id, session_ended_at)
    WHERE session_ended_at IS NOT NULL AND aggregated_at IS NULL;
