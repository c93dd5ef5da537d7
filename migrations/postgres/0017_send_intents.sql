-- A send to a provider that takes no idempotency key (SMTP, SIP) is
-- announced before its network call: a channel_sends row without an
-- outcome, committed first, and filled in when the provider answers. Only
-- the attempt that inserted the row sends. A claim whose node died leaves
-- the row without an outcome: its communication becomes IN_DOUBT (it may
-- have reached the contact) instead of being sent again.
ALTER TABLE channel_sends ALTER COLUMN outcome DROP NOT NULL;

-- Sends in flight: the in-doubt sweep reads only these.
CREATE INDEX channel_sends_pending ON channel_sends (created_at) WHERE outcome IS NULL;
