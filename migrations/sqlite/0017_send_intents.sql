-- A send to a provider that takes no idempotency key (SMTP, SIP) is
-- announced before its network call: a channel_sends row without an
-- outcome, committed first, and filled in when the provider answers. Only
-- the attempt that inserted the row sends. A claim whose node died leaves
-- the row without an outcome: its communication becomes IN_DOUBT (it may
-- have reached the contact) instead of being sent again.
-- (SQLite cannot drop a NOT NULL in place: the table is rebuilt.)
CREATE TABLE channel_sends_new (
    communication_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    outcome TEXT,
    created_at BIGINT NOT NULL
);
INSERT INTO channel_sends_new (communication_id, tenant_id, channel, outcome, created_at)
SELECT communication_id, tenant_id, channel, outcome, created_at FROM channel_sends;
DROP TABLE channel_sends;
ALTER TABLE channel_sends_new RENAME TO channel_sends;

-- Sends in flight: the in-doubt sweep reads only these.
CREATE INDEX channel_sends_pending ON channel_sends (created_at) WHERE outcome IS NULL;
