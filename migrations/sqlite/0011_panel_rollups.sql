-- The analytics panel reads counters, not rows: three rollup tables kept
-- exact by triggers, in the transaction of every write to contacts and
-- communications (import upserts, the engine's writes, claims, deletes),
-- so a panel read sums a few hundred rows whatever the campaign's size.
--
-- `shard` spreads a key's counter over rows on PostgreSQL so concurrent
-- engine transactions do not queue on one row; SQLite has one writer and
-- always writes shard 0. Readers sum over shards. Counters may reach 0;
-- readers skip keys whose sum is 0.

-- Contacts per current stage (`staged` 0 and `stage` '' for none), result
-- flag (-1 for none) and whether a session outcome was applied.
CREATE TABLE contact_rollups (
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    staged BIGINT NOT NULL,
    stage TEXT NOT NULL,
    result BIGINT NOT NULL,
    session BIGINT NOT NULL,
    shard BIGINT NOT NULL,
    contacts BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, staged, stage, result, session, shard)
) WITHOUT ROWID;

-- Communications per 15-minute slot of start_date (start_date / 900000000,
-- the division the panel's distributions use), stage name and status.
CREATE TABLE slot_rollups (
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    slot BIGINT NOT NULL,
    stage_name TEXT NOT NULL,
    status TEXT NOT NULL,
    shard BIGINT NOT NULL,
    communications BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, slot, stage_name, status, shard)
) WITHOUT ROWID;

-- Communications with an A/B label per stage name and label, and of those
-- the ones whose contact's ResultFlag is true now: a contact's flag change
-- moves its labelled communications between the two counts.
CREATE TABLE alternative_rollups (
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    stage_name TEXT NOT NULL,
    alternative TEXT NOT NULL,
    shard BIGINT NOT NULL,
    communications BIGINT NOT NULL,
    successful BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, stage_name, alternative, shard)
) WITHOUT ROWID;

CREATE TRIGGER contacts_rollup_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contact_rollups (tenant_id, campaign_id, staged, stage, result, session, shard, contacts)
    VALUES (NEW.tenant_id, NEW.campaign_id, NEW.current_stage IS NOT NULL, COALESCE(NEW.current_stage, ''),
            COALESCE(NEW.result_flag, -1), NEW.last_session_at IS NOT NULL, 0, 1)
    ON CONFLICT (tenant_id, campaign_id, staged, stage, result, session, shard) DO UPDATE SET contacts = contacts + 1;
END;

CREATE TRIGGER contacts_rollup_update AFTER UPDATE OF current_stage, result_flag, last_session_at ON contacts
WHEN OLD.current_stage IS NOT NEW.current_stage OR OLD.result_flag IS NOT NEW.result_flag
  OR (OLD.last_session_at IS NULL) <> (NEW.last_session_at IS NULL)
BEGIN
    UPDATE contact_rollups SET contacts = contacts - 1
    WHERE tenant_id = OLD.tenant_id AND campaign_id = OLD.campaign_id AND staged = (OLD.current_stage IS NOT NULL)
      AND stage = COALESCE(OLD.current_stage, '') AND result = COALESCE(OLD.result_flag, -1)
      AND session = (OLD.last_session_at IS NOT NULL) AND shard = 0;
    INSERT INTO contact_rollups (tenant_id, campaign_id, staged, stage, result, session, shard, contacts)
    VALUES (NEW.tenant_id, NEW.campaign_id, NEW.current_stage IS NOT NULL, COALESCE(NEW.current_stage, ''),
            COALESCE(NEW.result_flag, -1), NEW.last_session_at IS NOT NULL, 0, 1)
    ON CONFLICT (tenant_id, campaign_id, staged, stage, result, session, shard) DO UPDATE SET contacts = contacts + 1;
    UPDATE alternative_rollups SET successful = successful + moved.n
    FROM (SELECT stage_name, alternative,
                 COUNT(*) * ((COALESCE(NEW.result_flag, 0) = 1) - (COALESCE(OLD.result_flag, 0) = 1)) AS n
          FROM communications WHERE contact_id = NEW.id AND alternative IS NOT NULL
          GROUP BY stage_name, alternative) AS moved
    WHERE (COALESCE(NEW.result_flag, 0) = 1) <> (COALESCE(OLD.result_flag, 0) = 1)
      AND alternative_rollups.tenant_id = NEW.tenant_id AND alternative_rollups.campaign_id = NEW.campaign_id
      AND alternative_rollups.stage_name = moved.stage_name AND alternative_rollups.alternative = moved.alternative
      AND alternative_rollups.shard = 0;
END;

-- A contact's communications go first, while its flag still says how
-- they were counted (the foreign key's cascade would find none left).
CREATE TRIGGER contacts_rollup_before_delete BEFORE DELETE ON contacts BEGIN
    DELETE FROM communications WHERE contact_id = OLD.id;
END;

CREATE TRIGGER contacts_rollup_delete AFTER DELETE ON contacts BEGIN
    UPDATE contact_rollups SET contacts = contacts - 1
    WHERE tenant_id = OLD.tenant_id AND campaign_id = OLD.campaign_id AND staged = (OLD.current_stage IS NOT NULL)
      AND stage = COALESCE(OLD.current_stage, '') AND result = COALESCE(OLD.result_flag, -1)
      AND session = (OLD.last_session_at IS NOT NULL) AND shard = 0;
END;

CREATE TRIGGER communications_rollup_insert AFTER INSERT ON communications BEGIN
    INSERT INTO slot_rollups (tenant_id, campaign_id, slot, stage_name, status, shard, communications)
    VALUES (NEW.tenant_id, NEW.campaign_id, NEW.start_date / 900000000, NEW.stage_name, NEW.status, 0, 1)
    ON CONFLICT (tenant_id, campaign_id, slot, stage_name, status, shard) DO UPDATE SET communications = communications + 1;
    INSERT INTO alternative_rollups (tenant_id, campaign_id, stage_name, alternative, shard, communications, successful)
    SELECT NEW.tenant_id, NEW.campaign_id, NEW.stage_name, NEW.alternative, 0, 1,
           COALESCE((SELECT result_flag = 1 FROM contacts WHERE id = NEW.contact_id), 0)
    WHERE NEW.alternative IS NOT NULL
    ON CONFLICT (tenant_id, campaign_id, stage_name, alternative, shard)
    DO UPDATE SET communications = communications + 1, successful = successful + excluded.successful;
END;

CREATE TRIGGER communications_rollup_slot_update AFTER UPDATE OF start_date, stage_name, status ON communications
WHEN OLD.start_date / 900000000 <> NEW.start_date / 900000000 OR OLD.stage_name <> NEW.stage_name OR OLD.status <> NEW.status
BEGIN
    UPDATE slot_rollups SET communications = communications - 1
    WHERE tenant_id = OLD.tenant_id AND campaign_id = OLD.campaign_id AND slot = OLD.start_date / 900000000
      AND stage_name = OLD.stage_name AND status = OLD.status AND shard = 0;
    INSERT INTO slot_rollups (tenant_id, campaign_id, slot, stage_name, status, shard, communications)
    VALUES (NEW.tenant_id, NEW.campaign_id, NEW.start_date / 900000000, NEW.stage_name, NEW.status, 0, 1)
    ON CONFLICT (tenant_id, campaign_id, slot, stage_name, status, shard) DO UPDATE SET communications = communications + 1;
END;

CREATE TRIGGER communications_rollup_alternative_update AFTER UPDATE OF stage_name, alternative ON communications
WHEN OLD.stage_name <> NEW.stage_name OR OLD.alternative IS NOT NEW.alternative
BEGIN
    UPDATE alternative_rollups SET communications = communications - 1,
           successful = successful - COALESCE((SELECT result_flag = 1 FROM contacts WHERE id = OLD.contact_id), 0)
    WHERE OLD.alternative IS NOT NULL AND tenant_id = OLD.tenant_id AND campaign_id = OLD.campaign_id
      AND stage_name = OLD.stage_name AND alternative = OLD.alternative AND shard = 0;
    INSERT INTO alternative_rollups (tenant_id, campaign_id, stage_name, alternative, shard, communications, successful)
    SELECT NEW.tenant_id, NEW.campaign_id, NEW.stage_name, NEW.alternative, 0, 1,
           COALESCE((SELECT result_flag = 1 FROM contacts WHERE id = NEW.contact_id), 0)
    WHERE NEW.alternative IS NOT NULL
    ON CONFLICT (tenant_id, campaign_id, stage_name, alternative, shard)
    DO UPDATE SET communications = communications + 1, successful = successful + excluded.successful;
END;

CREATE TRIGGER communications_rollup_delete AFTER DELETE ON communications BEGIN
    UPDATE slot_rollups SET communications = communications - 1
    WHERE tenant_id = OLD.tenant_id AND campaign_id = OLD.campaign_id AND slot = OLD.start_date / 900000000
      AND stage_name = OLD.stage_name AND status = OLD.status AND shard = 0;
    UPDATE alternative_rollups SET communications = communications - 1,
           successful = successful - COALESCE((SELECT result_flag = 1 FROM contacts WHERE id = OLD.contact_id), 0)
    WHERE OLD.alternative IS NOT NULL AND tenant_id = OLD.tenant_id AND campaign_id = OLD.campaign_id
      AND stage_name = OLD.stage_name AND alternative = OLD.alternative AND shard = 0;
END;

-- Existing rows.
INSERT INTO contact_rollups (tenant_id, campaign_id, staged, stage, result, session, shard, contacts)
SELECT tenant_id, campaign_id, current_stage IS NOT NULL, COALESCE(current_stage, ''), COALESCE(result_flag, -1),
       last_session_at IS NOT NULL, 0, COUNT(*)
FROM contacts GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO slot_rollups (tenant_id, campaign_id, slot, stage_name, status, shard, communications)
SELECT tenant_id, campaign_id, start_date / 900000000, stage_name, status, 0, COUNT(*)
FROM communications GROUP BY 1, 2, 3, 4, 5;
INSERT INTO alternative_rollups (tenant_id, campaign_id, stage_name, alternative, shard, communications, successful)
SELECT m.tenant_id, m.campaign_id, m.stage_name, m.alternative, 0, COUNT(*),
       SUM(CASE WHEN c.result_flag = 1 THEN 1 ELSE 0 END)
FROM communications m JOIN contacts c ON c.id = m.contact_id WHERE m.alternative IS NOT NULL GROUP BY 1, 2, 3, 4;
