-- A send a provider could not take for now (5xx, 429, unreachable) is
-- retried under the same idempotency key, later each time, while its
-- window is open: `send_attempts` counts the failed attempts and
-- `send_error` keeps the last one's error, which becomes the FAILED
-- communication's reason once its window has passed.
ALTER TABLE communications ADD COLUMN send_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE communications ADD COLUMN send_error TEXT;

-- The tick's sweep for retries whose window closed reads only these.
CREATE INDEX communications_retrying ON communications (lease_until) WHERE status = 'IN_PROGRESS' AND send_attempts > 0;
