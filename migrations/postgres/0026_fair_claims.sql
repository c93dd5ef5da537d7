-- Fair claims (issue 22) read each campaign's due communications, and its
-- ended sessions awaiting AGGREGATION, apart: oldest first, up to its share
-- of the batch. Both indexes now start with the campaign and end with the
-- order, so a campaign's claim reads its share and stops: through the
-- status index alone, every tick sorted all due rows (82 ms at 80 000 due
-- with 100 000 more planned), and a campaign's own scan of the session
-- index would step over every other campaign's backlog.

-- A campaign's due (and in-flight) rows by start date; its pending work
-- and next planned start as before (a prefix), same predicate.
DROP INDEX communications_campaign;
CREATE INDEX communications_campaign ON communications (campaign_id, status, start_date)
    WHERE status IN ('PLANNED', 'IN_PROGRESS') OR (session_ended_at IS NOT NULL AND aggregated_at IS NULL);

-- A campaign's ended sessions awaiting AGGREGATION, oldest first. Only the
-- claim read this index.
DROP INDEX communications_sessions;
CREATE INDEX communications_sessions ON communications (campaign_id, session_ended_at)
    WHERE session_ended_at IS NOT NULL AND aggregated_at IS NULL;
