-- A contact can answer before the engine has recorded the session its
-- send opened: the provider delivers, the contact replies at once, and
-- the webhook arrives while the engine is still writing the session's
-- address. Such an event is kept here, and the session takes the events
-- for its address or provider reference that arrived since its send
-- began when it opens. Events no session takes (a stranger, an answer to
-- a session long ended) are deleted after a day.
CREATE TABLE early_inbound (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    -- A message: who wrote, what, and the provider's id of it.
    address TEXT,
    content TEXT,
    provider_message_id TEXT,
    -- A call's final status: the call and the session results it means.
    provider_ref TEXT,
    session_results TEXT,
    received_at BIGINT NOT NULL
);
CREATE INDEX early_inbound_address ON early_inbound (integration_id, address, received_at);
CREATE INDEX early_inbound_provider_ref ON early_inbound (integration_id, provider_ref, received_at);
CREATE INDEX early_inbound_received ON early_inbound (received_at);
-- A provider's retry of a message is kept once.
CREATE UNIQUE INDEX early_inbound_message ON early_inbound (integration_id, provider_message_id);
