-- The channel a communication went out on, and for HUMAN ones the
-- operator task: a session that stays open until an operator records its
-- outcome. claimed_by names the operator working on it.
ALTER TABLE communications ADD COLUMN channel TEXT;
ALTER TABLE communications ADD COLUMN claimed_by TEXT;
CREATE INDEX communications_open_tasks ON communications (tenant_id, channel, status);
