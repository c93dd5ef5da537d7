-- Fair conversation claims (issue 22): the sessions awaiting an answer and
-- the conversations gone quiet are claimed like due sends, each campaign
-- apart up to its share of the batch (store/src/fair.rs). Both queue
-- indexes now start with the campaign and end with the queue's order, so
-- a campaign's claim reads its share and stops instead of stepping over
-- every other tenant's open sessions.

DROP INDEX communications_awaiting;
CREATE INDEX communications_awaiting ON communications (campaign_id, awaiting_answer_since)
    WHERE awaiting_answer_since IS NOT NULL;

DROP INDEX communications_open_conversations;
CREATE INDEX communications_open_conversations ON communications (campaign_id, last_activity_at)
    WHERE session_address IS NOT NULL AND session_ended_at IS NULL;
