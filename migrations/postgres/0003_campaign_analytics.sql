-- Settings > YAML Analytics: the file as uploaded (downloaded verbatim) and
-- when; its parsed form is recomputed from the text.
ALTER TABLE campaigns ADD COLUMN analytics_yaml TEXT;
ALTER TABLE campaigns ADD COLUMN analytics_updated_at BIGINT;
