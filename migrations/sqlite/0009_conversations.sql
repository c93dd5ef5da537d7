-- Conversations on two-way channels. A communication sent through a
-- provider records which integration carried it, the contact's address
-- there (chat id, phone number, email address) by which inbound messages
-- find their session, and the provider's id of the first message or call
-- by which status callbacks find it. last_activity_at drives the
-- inactivity timeout; awaiting_answer_since marks a session whose contact
-- wrote and whose agent has not answered yet (claimed with answer_lease_until).
ALTER TABLE campaigns ADD COLUMN llm_integration_id TEXT;
ALTER TABLE communications ADD COLUMN integration_id TEXT;
ALTER TABLE communications ADD COLUMN agent_id TEXT;
ALTER TABLE communications ADD COLUMN session_address TEXT;
ALTER TABLE communications ADD COLUMN provider_ref TEXT;
ALTER TABLE communications ADD COLUMN last_activity_at BIGINT;
ALTER TABLE communications ADD COLUMN awaiting_answer_since BIGINT;
ALTER TABLE communications ADD COLUMN answer_lease_until BIGINT;
CREATE INDEX communications_session_address ON communications (integration_id, session_address);
CREATE INDEX communications_provider_ref ON communications (integration_id, provider_ref);
-- The two conversation queues the engine claims from each tick, partial so
-- that a tick reads only open conversations, never every communication.
CREATE INDEX communications_awaiting ON communications (awaiting_answer_since) WHERE awaiting_answer_since IS NOT NULL;
CREATE INDEX communications_open_conversations ON communications (last_activity_at)
    WHERE session_address IS NOT NULL AND session_ended_at IS NULL;

-- The transcript: every message of a session in order. An inbound message
-- carries the provider's id, unique per integration, so a webhook the
-- provider retries is stored once.
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    communication_id TEXT NOT NULL REFERENCES communications(id) ON DELETE CASCADE,
    integration_id TEXT,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    sent_at BIGINT NOT NULL,
    provider_message_id TEXT
);
CREATE INDEX messages_session ON messages (communication_id, sent_at);
CREATE UNIQUE INDEX messages_provider ON messages (integration_id, provider_message_id);
