-- The hosts a campaign's strategies may call over HTTP (Settings >
-- External APIs): a JSON array of host names; empty, no outbound HTTP.
ALTER TABLE campaigns ADD COLUMN http_allowlist TEXT NOT NULL DEFAULT '[]';
