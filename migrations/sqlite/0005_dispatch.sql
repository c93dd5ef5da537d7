-- The engine's bookkeeping on a communication. A PLANNED one is claimed
-- (IN_PROGRESS, leased); its channel session ends with session_results;
-- then the AGGREGATION strategy's outcome is applied and aggregated_at set.
-- A lease that expires before the session ended means the node died: the
-- send is retried with the same idempotency key (the communication id).
ALTER TABLE communications ADD COLUMN lease_until BIGINT;
ALTER TABLE communications ADD COLUMN session_results TEXT;
ALTER TABLE communications ADD COLUMN session_ended_at BIGINT;
ALTER TABLE communications ADD COLUMN aggregated_at BIGINT;
CREATE INDEX communications_sessions ON communications (session_ended_at, aggregated_at);
CREATE INDEX communications_campaign ON communications (campaign_id, status);

-- Optimistic concurrency: a strategy's outcome is applied only to the
-- revision it was computed from.
ALTER TABLE contacts ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

-- What each channel send produced, keyed by the idempotency key: a retried
-- send returns the recorded outcome instead of reaching the contact twice.
CREATE TABLE channel_sends (
    communication_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    outcome TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
