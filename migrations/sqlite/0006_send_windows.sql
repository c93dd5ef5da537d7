-- Per-channel send rate limits, shared by every node: sends per tenant,
-- channel and second. Rows older than a minute are pruned by the engine.
CREATE TABLE send_windows (
    tenant_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    second BIGINT NOT NULL,
    sends BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, channel, second)
);
