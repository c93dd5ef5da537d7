-- When a campaign first became RUNNING: the analytics panel's default
-- period runs from its day to today. Campaigns started before this was
-- recorded keep NULL, and the panel starts on their creation day instead.
ALTER TABLE campaigns ADD COLUMN started_at BIGINT;
