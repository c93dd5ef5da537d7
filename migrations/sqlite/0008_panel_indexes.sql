-- The analytics panel reads a campaign in one index-only scan per query.
-- last_session_at marks a contact whose session outcome was applied
-- (processed), so the overview needs no per-contact subquery.
ALTER TABLE contacts ADD COLUMN last_session_at BIGINT;
CREATE INDEX contacts_panel ON contacts (tenant_id, campaign_id, current_stage, result_flag, last_session_at);
CREATE INDEX communications_timeline ON communications (tenant_id, campaign_id, start_date, stage_name, status);
-- A contact processed before this column existed has an applied session.
UPDATE contacts SET last_session_at = (SELECT MAX(m.aggregated_at) FROM communications m WHERE m.contact_id = contacts.id);
