-- The analytics panel reads counters, not rows: three rollup tables kept
-- exact by triggers, in the transaction of every write to contacts and
-- communications (import upserts, the engine's writes, claims, deletes),
-- so a panel read sums a few hundred rows whatever the campaign's size.
--
-- PostgreSQL triggers are per statement, over its transition tables: a
-- 50-row import statement adds one grouped delta per rollup to a staging
-- table, under the transaction's id, without taking any shared lock. At
-- commit a deferred trigger applies the transaction's deltas in key order.
-- So a transaction takes the counters' row locks last and in one global
-- order: two transactions never deadlock on them (applying each
-- statement's deltas at once did: two imports into one campaign locked
-- contacts and counters interleaved), and a counter's lock is held only
-- while committing. `shard` (a hash of the contact's or communication's
-- id) spreads a key's counter over rows, so concurrent commits on one
-- campaign rarely queue on one row: 16 shards for contacts and A/B labels
-- (few keys), 4 for slots (many keys: each shard multiplies the rows a
-- distribution reads). Readers sum over shards; counters may reach 0 and
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
);

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
);

-- Communications with an A/B label per stage name and label, and of those
-- the ones whose contact's ResultFlag is true now: a contact's flag change
-- moves its labelled communications between the two counts.
-- Known gap (PostgreSQL only; SQLite has one writer): a statement that
-- labels a communication (a send) reads its contact's flag without locking
-- the contact, so if another transaction changes that flag and commits
-- while the label is uncommitted, this communication's `successful` keeps
-- the old flag. Writers that lock the contact row first (the import
-- upsert, the engine's contact write) are exact.
CREATE TABLE alternative_rollups (
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    stage_name TEXT NOT NULL,
    alternative TEXT NOT NULL,
    shard BIGINT NOT NULL,
    communications BIGINT NOT NULL,
    successful BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, stage_name, alternative, shard)
);

-- Deltas of running transactions (by txid), applied at their commit.
CREATE UNLOGGED TABLE contact_rollup_deltas (
    txid BIGINT NOT NULL, tenant_id TEXT NOT NULL, campaign_id TEXT NOT NULL, staged BIGINT NOT NULL,
    stage TEXT NOT NULL, result BIGINT NOT NULL, session BIGINT NOT NULL, shard BIGINT NOT NULL, contacts BIGINT NOT NULL
);
CREATE INDEX contact_rollup_deltas_txid ON contact_rollup_deltas (txid);
CREATE UNLOGGED TABLE slot_rollup_deltas (
    txid BIGINT NOT NULL, tenant_id TEXT NOT NULL, campaign_id TEXT NOT NULL, slot BIGINT NOT NULL,
    stage_name TEXT NOT NULL, status TEXT NOT NULL, shard BIGINT NOT NULL, communications BIGINT NOT NULL
);
CREATE INDEX slot_rollup_deltas_txid ON slot_rollup_deltas (txid);
CREATE UNLOGGED TABLE alternative_rollup_deltas (
    txid BIGINT NOT NULL, tenant_id TEXT NOT NULL, campaign_id TEXT NOT NULL, stage_name TEXT NOT NULL,
    alternative TEXT NOT NULL, shard BIGINT NOT NULL, communications BIGINT NOT NULL, successful BIGINT NOT NULL
);
CREATE INDEX alternative_rollup_deltas_txid ON alternative_rollup_deltas (txid);
-- One row per transaction with deltas; its deferred trigger applies them.
CREATE UNLOGGED TABLE rollup_commits (txid BIGINT PRIMARY KEY);

CREATE FUNCTION rollups_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM rollup_commits WHERE txid = NEW.txid;
    WITH d AS (DELETE FROM contact_rollup_deltas WHERE txid = NEW.txid RETURNING *)
    INSERT INTO contact_rollups AS r (tenant_id, campaign_id, staged, stage, result, session, shard, contacts)
    SELECT tenant_id, campaign_id, staged, stage, result, session, shard, SUM(contacts) FROM d
    GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING SUM(contacts) <> 0 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (tenant_id, campaign_id, staged, stage, result, session, shard)
    DO UPDATE SET contacts = r.contacts + excluded.contacts;
    WITH d AS (DELETE FROM slot_rollup_deltas WHERE txid = NEW.txid RETURNING *)
    INSERT INTO slot_rollups AS r (tenant_id, campaign_id, slot, stage_name, status, shard, communications)
    SELECT tenant_id, campaign_id, slot, stage_name, status, shard, SUM(communications) FROM d
    GROUP BY 1, 2, 3, 4, 5, 6 HAVING SUM(communications) <> 0 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (tenant_id, campaign_id, slot, stage_name, status, shard)
    DO UPDATE SET communications = r.communications + excluded.communications;
    WITH d AS (DELETE FROM alternative_rollup_deltas WHERE txid = NEW.txid RETURNING *)
    INSERT INTO alternative_rollups AS r (tenant_id, campaign_id, stage_name, alternative, shard, communications, successful)
    SELECT tenant_id, campaign_id, stage_name, alternative, shard, SUM(communications), SUM(successful) FROM d
    GROUP BY 1, 2, 3, 4, 5 HAVING SUM(communications) <> 0 OR SUM(successful) <> 0 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (tenant_id, campaign_id, stage_name, alternative, shard)
    DO UPDATE SET communications = r.communications + excluded.communications, successful = r.successful + excluded.successful;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER rollups_commit AFTER INSERT ON rollup_commits
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION rollups_commit();

-- Each statement adds +1 per new row and -1 per old row to its keys'
-- counters, netted per key; `successful` reads the contact's ResultFlag
-- as it is now.
CREATE FUNCTION contacts_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO contact_rollup_deltas (txid, tenant_id, campaign_id, staged, stage, result, session, shard, contacts)
    SELECT txid_current(), tenant_id, campaign_id, staged, stage, result, session, shard, SUM(d)
    FROM (
        SELECT tenant_id, campaign_id, CASE WHEN current_stage IS NULL THEN 0 ELSE 1 END AS staged,
               COALESCE(current_stage, '') AS stage, COALESCE(result_flag, -1) AS result,
               CASE WHEN last_session_at IS NULL THEN 0 ELSE 1 END AS session, hashtext(id) & 15 AS shard, 1 AS d
        FROM new_rows
    ) AS delta
    GROUP BY tenant_id, campaign_id, staged, stage, result, session, shard HAVING SUM(d) <> 0;
    INSERT INTO rollup_commits (txid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION contacts_rollup_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- INSERT … ON CONFLICT fires this for every statement, mostly with no
    -- row updated.
    IF NOT EXISTS (SELECT FROM new_rows) THEN
        RETURN NULL;
    END IF;
    INSERT INTO contact_rollup_deltas (txid, tenant_id, campaign_id, staged, stage, result, session, shard, contacts)
    SELECT txid_current(), tenant_id, campaign_id, staged, stage, result, session, shard, SUM(d)
    FROM (
        SELECT tenant_id, campaign_id, CASE WHEN current_stage IS NULL THEN 0 ELSE 1 END AS staged,
               COALESCE(current_stage, '') AS stage, COALESCE(result_flag, -1) AS result,
               CASE WHEN last_session_at IS NULL THEN 0 ELSE 1 END AS session, hashtext(id) & 15 AS shard, 1 AS d
        FROM new_rows
        UNION ALL
        SELECT tenant_id, campaign_id, CASE WHEN current_stage IS NULL THEN 0 ELSE 1 END AS staged,
               COALESCE(current_stage, '') AS stage, COALESCE(result_flag, -1) AS result,
               CASE WHEN last_session_at IS NULL THEN 0 ELSE 1 END AS session, hashtext(id) & 15 AS shard, -1 AS d
        FROM old_rows
    ) AS delta
    GROUP BY tenant_id, campaign_id, staged, stage, result, session, shard HAVING SUM(d) <> 0;
    -- A contact whose ResultFlag turned true (or stopped being true)
    -- moves its labelled communications' `successful` with it.
    INSERT INTO alternative_rollup_deltas (txid, tenant_id, campaign_id, stage_name, alternative, shard, communications, successful)
    SELECT txid_current(), m.tenant_id, m.campaign_id, m.stage_name, m.alternative, hashtext(m.id) & 15, 0, SUM(moved.d)
    FROM (
        SELECT n.id, CASE WHEN n.result_flag = 1 THEN 1 ELSE 0 END - CASE WHEN o.result_flag = 1 THEN 1 ELSE 0 END AS d
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE (COALESCE(n.result_flag, 0) = 1) <> (COALESCE(o.result_flag, 0) = 1)
    ) AS moved JOIN communications m ON m.contact_id = moved.id
    WHERE m.alternative IS NOT NULL
    GROUP BY 2, 3, 4, 5, 6 HAVING SUM(moved.d) <> 0;
    INSERT INTO rollup_commits (txid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION contacts_rollup_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO contact_rollup_deltas (txid, tenant_id, campaign_id, staged, stage, result, session, shard, contacts)
    SELECT txid_current(), tenant_id, campaign_id, staged, stage, result, session, shard, SUM(d)
    FROM (
        SELECT tenant_id, campaign_id, CASE WHEN current_stage IS NULL THEN 0 ELSE 1 END AS staged,
               COALESCE(current_stage, '') AS stage, COALESCE(result_flag, -1) AS result,
               CASE WHEN last_session_at IS NULL THEN 0 ELSE 1 END AS session, hashtext(id) & 15 AS shard, -1 AS d
        FROM old_rows
    ) AS delta
    GROUP BY tenant_id, campaign_id, staged, stage, result, session, shard HAVING SUM(d) <> 0;
    INSERT INTO rollup_commits (txid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION communications_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO slot_rollup_deltas (txid, tenant_id, campaign_id, slot, stage_name, status, shard, communications)
    SELECT txid_current(), tenant_id, campaign_id, slot, stage_name, status, shard, SUM(d)
    FROM (
        SELECT tenant_id, campaign_id, start_date / 900000000 AS slot, stage_name, status, hashtext(id) & 3 AS shard, 1 AS d
        FROM new_rows
    ) AS delta
    GROUP BY tenant_id, campaign_id, slot, stage_name, status, shard HAVING SUM(d) <> 0;
    INSERT INTO alternative_rollup_deltas (txid, tenant_id, campaign_id, stage_name, alternative, shard, communications, successful)
    SELECT txid_current(), delta.tenant_id, delta.campaign_id, delta.stage_name, delta.alternative, delta.shard, SUM(delta.d),
           SUM(CASE WHEN c.result_flag = 1 THEN delta.d ELSE 0 END)
    FROM (
        SELECT tenant_id, campaign_id, contact_id, stage_name, alternative, hashtext(id) & 15 AS shard, 1 AS d
        FROM new_rows WHERE alternative IS NOT NULL
    ) AS delta LEFT JOIN contacts c ON c.id = delta.contact_id
    GROUP BY 2, 3, 4, 5, 6 HAVING SUM(delta.d) <> 0 OR SUM(CASE WHEN c.result_flag = 1 THEN delta.d ELSE 0 END) <> 0;
    INSERT INTO rollup_commits (txid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION communications_rollup_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- INSERT … ON CONFLICT fires this for every statement, mostly with no
    -- row updated.
    IF NOT EXISTS (SELECT FROM new_rows) THEN
        RETURN NULL;
    END IF;
    INSERT INTO slot_rollup_deltas (txid, tenant_id, campaign_id, slot, stage_name, status, shard, communications)
    SELECT txid_current(), tenant_id, campaign_id, slot, stage_name, status, shard, SUM(d)
    FROM (
        SELECT tenant_id, campaign_id, start_date / 900000000 AS slot, stage_name, status, hashtext(id) & 3 AS shard, 1 AS d
        FROM new_rows
        UNION ALL
        SELECT tenant_id, campaign_id, start_date / 900000000 AS slot, stage_name, status, hashtext(id) & 3 AS shard, -1 AS d
        FROM old_rows
    ) AS delta
    GROUP BY tenant_id, campaign_id, slot, stage_name, status, shard HAVING SUM(d) <> 0;
    INSERT INTO alternative_rollup_deltas (txid, tenant_id, campaign_id, stage_name, alternative, shard, communications, successful)
    SELECT txid_current(), delta.tenant_id, delta.campaign_id, delta.stage_name, delta.alternative, delta.shard, SUM(delta.d),
           SUM(CASE WHEN c.result_flag = 1 THEN delta.d ELSE 0 END)
    FROM (
        SELECT tenant_id, campaign_id, contact_id, stage_name, alternative, hashtext(id) & 15 AS shard, 1 AS d
        FROM new_rows WHERE alternative IS NOT NULL
        UNION ALL
        SELECT tenant_id, campaign_id, contact_id, stage_name, alternative, hashtext(id) & 15 AS shard, -1 AS d
        FROM old_rows WHERE alternative IS NOT NULL
    ) AS delta LEFT JOIN contacts c ON c.id = delta.contact_id
    GROUP BY 2, 3, 4, 5, 6 HAVING SUM(delta.d) <> 0 OR SUM(CASE WHEN c.result_flag = 1 THEN delta.d ELSE 0 END) <> 0;
    INSERT INTO rollup_commits (txid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION communications_rollup_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO slot_rollup_deltas (txid, tenant_id, campaign_id, slot, stage_name, status, shard, communications)
    SELECT txid_current(), tenant_id, campaign_id, slot, stage_name, status, shard, SUM(d)
    FROM (
        SELECT tenant_id, campaign_id, start_date / 900000000 AS slot, stage_name, status, hashtext(id) & 3 AS shard, -1 AS d
        FROM old_rows
    ) AS delta
    GROUP BY tenant_id, campaign_id, slot, stage_name, status, shard HAVING SUM(d) <> 0;
    INSERT INTO alternative_rollup_deltas (txid, tenant_id, campaign_id, stage_name, alternative, shard, communications, successful)
    SELECT txid_current(), delta.tenant_id, delta.campaign_id, delta.stage_name, delta.alternative, delta.shard, SUM(delta.d),
           SUM(CASE WHEN c.result_flag = 1 THEN delta.d ELSE 0 END)
    FROM (
        SELECT tenant_id, campaign_id, contact_id, stage_name, alternative, hashtext(id) & 15 AS shard, -1 AS d
        FROM old_rows WHERE alternative IS NOT NULL
    ) AS delta LEFT JOIN contacts c ON c.id = delta.contact_id
    GROUP BY 2, 3, 4, 5, 6 HAVING SUM(delta.d) <> 0 OR SUM(CASE WHEN c.result_flag = 1 THEN delta.d ELSE 0 END) <> 0;
    INSERT INTO rollup_commits (txid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

-- A contact's communications go first, while its flag still says how
-- they were counted (the foreign key's cascade would find none left).
CREATE FUNCTION contacts_delete_communications() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM communications WHERE contact_id = OLD.id;
    RETURN OLD;
END $$;

CREATE TRIGGER contacts_rollup_insert AFTER INSERT ON contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION contacts_rollup_insert();
CREATE TRIGGER contacts_rollup_update AFTER UPDATE ON contacts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION contacts_rollup_update();
CREATE TRIGGER contacts_rollup_delete AFTER DELETE ON contacts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION contacts_rollup_delete();
CREATE TRIGGER contacts_rollup_before_delete BEFORE DELETE ON contacts
    FOR EACH ROW EXECUTE FUNCTION contacts_delete_communications();
CREATE TRIGGER communications_rollup_insert AFTER INSERT ON communications
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION communications_rollup_insert();
CREATE TRIGGER communications_rollup_update AFTER UPDATE ON communications
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION communications_rollup_update();
CREATE TRIGGER communications_rollup_delete AFTER DELETE ON communications
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION communications_rollup_delete();

-- Existing rows (the triggers above already lock out concurrent writers).
INSERT INTO contact_rollups (tenant_id, campaign_id, staged, stage, result, session, shard, contacts)
SELECT tenant_id, campaign_id, CASE WHEN current_stage IS NULL THEN 0 ELSE 1 END, COALESCE(current_stage, ''),
       COALESCE(result_flag, -1), CASE WHEN last_session_at IS NULL THEN 0 ELSE 1 END, hashtext(id) & 15, COUNT(*)
FROM contacts GROUP BY 1, 2, 3, 4, 5, 6, 7;
INSERT INTO slot_rollups (tenant_id, campaign_id, slot, stage_name, status, shard, communications)
SELECT tenant_id, campaign_id, start_date / 900000000, stage_name, status, hashtext(id) & 3, COUNT(*)
FROM communications GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO alternative_rollups (tenant_id, campaign_id, stage_name, alternative, shard, communications, successful)
SELECT m.tenant_id, m.campaign_id, m.stage_name, m.alternative, hashtext(m.id) & 15, COUNT(*),
       SUM(CASE WHEN c.result_flag = 1 THEN 1 ELSE 0 END)
FROM communications m JOIN contacts c ON c.id = m.contact_id WHERE m.alternative IS NOT NULL GROUP BY 1, 2, 3, 4, 5;
