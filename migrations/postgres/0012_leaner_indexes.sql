-- Partial indexes on communications, so that a row version is entered only
-- in the indexes whose queries can want it. The engine rewrites each
-- communication three or four times in its life (claim, session start,
-- the AGGREGATION outcome), and no update that changes `status` can be
-- HOT: every version went into all twelve indexes, which was most of an
-- engine batch's write cost and of the table's bloat. Each predicate below
-- is implied by the WHERE of the queries the index serves (PostgreSQL
-- proves it, IN lists and ORs included), so their plans are unchanged.

-- Claims and MISSED: only rows still to send or in flight.
DROP INDEX communications_due;
CREATE INDEX communications_due ON communications (status, start_date) WHERE status IN ('PLANNED', 'IN_PROGRESS');

-- Ended sessions awaiting their AGGREGATION, oldest first.
DROP INDEX communications_sessions;
CREATE INDEX communications_sessions ON communications (session_ended_at)
    WHERE session_ended_at IS NOT NULL AND aggregated_at IS NULL;

-- A campaign's pending work (pending_communications, finish_done_campaigns,
-- the next planned start): the same expression as those queries'.
DROP INDEX communications_campaign;
CREATE INDEX communications_campaign ON communications (campaign_id, status)
    WHERE status IN ('PLANNED', 'IN_PROGRESS') OR (session_ended_at IS NOT NULL AND aggregated_at IS NULL);

-- The operator queue: open Human tasks, oldest first.
DROP INDEX communications_open_tasks;
CREATE INDEX communications_open_tasks ON communications (tenant_id, start_date)
    WHERE channel = 'HUMAN' AND status = 'IN_PROGRESS' AND session_ended_at IS NULL;

-- Webhook lookups: only communications sent through an integration.
DROP INDEX communications_session_address;
CREATE INDEX communications_session_address ON communications (integration_id, session_address) WHERE integration_id IS NOT NULL;
DROP INDEX communications_provider_ref;
CREATE INDEX communications_provider_ref ON communications (integration_id, provider_ref) WHERE integration_id IS NOT NULL;

-- Deep analysis reads ended sessions only.
DROP INDEX communications_ended;
CREATE INDEX communications_ended ON communications (campaign_id, session_ended_at) WHERE session_ended_at IS NOT NULL;

-- Every contact write also went into an index that is a prefix of
-- contacts_panel (0008), which serves the same lookups.
DROP INDEX contacts_stage;
