-- The rollup triggers look the rows they join up by key, one index lookup
-- per changed row. As joins, PL/pgSQL planned them once per connection
-- for the size of the first transition tables it saw, and for a batch of
-- a few hundred rows chose to hash the whole other table: every contact
-- (communications' triggers, for a labelled communication's flag) or
-- every communication (contacts' update trigger, for the communications
-- of contacts whose flag moved, even when none had).

CREATE OR REPLACE FUNCTION contacts_rollup_update() RETURNS trigger LANGUAGE plpgsql AS $$
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
    -- moves its labelled communications' `successful` with it. `OFFSET 0`
    -- keeps the lateral subquery a lookup in `communications_contact` per
    -- such contact: pulled up into a plain join it could be hashed.
    INSERT INTO alternative_rollup_deltas (txid, tenant_id, campaign_id, stage_name, alternative, shard, communications, successful)
    SELECT txid_current(), m.tenant_id, m.campaign_id, m.stage_name, m.alternative, hashtext(m.id) & 15, 0, SUM(moved.d)
    FROM (
        SELECT n.id, CASE WHEN n.result_flag = 1 THEN 1 ELSE 0 END - CASE WHEN o.result_flag = 1 THEN 1 ELSE 0 END AS d
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE (COALESCE(n.result_flag, 0) = 1) <> (COALESCE(o.result_flag, 0) = 1)
    ) AS moved
    CROSS JOIN LATERAL (
        SELECT c.id, c.tenant_id, c.campaign_id, c.stage_name, c.alternative FROM communications c
        WHERE c.contact_id = moved.id AND c.alternative IS NOT NULL OFFSET 0
    ) AS m
    GROUP BY 2, 3, 4, 5, 6 HAVING SUM(moved.d) <> 0;
    INSERT INTO rollup_commits (txid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION communications_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO slot_rollup_deltas (txid, tenant_id, campaign_id, slot, stage_name, status, shard, communications)
    SELECT txid_current(), tenant_id, campaign_id, slot, stage_name, status, shard, SUM(d)
    FROM (
        SELECT tenant_id, campaign_id, start_date / 900000000 AS slot, stage_name, status, hashtext(id) & 3 AS shard, 1 AS d
        FROM new_rows
    ) AS delta
    GROUP BY tenant_id, campaign_id, slot, stage_name, status, shard HAVING SUM(d) <> 0;
    INSERT INTO alternative_rollup_deltas (txid, tenant_id, campaign_id, stage_name, alternative, shard, communications, successful)
    SELECT txid_current(), tenant_id, campaign_id, stage_name, alternative, shard, SUM(d), SUM(CASE WHEN flag = 1 THEN d ELSE 0 END)
    FROM (
        SELECT tenant_id, campaign_id, stage_name, alternative, hashtext(id) & 15 AS shard, 1 AS d,
               (SELECT c.result_flag FROM contacts c WHERE c.id = n.contact_id) AS flag
        FROM new_rows n WHERE alternative IS NOT NULL
    ) AS delta
    GROUP BY 2, 3, 4, 5, 6 HAVING SUM(d) <> 0 OR SUM(CASE WHEN flag = 1 THEN d ELSE 0 END) <> 0;
    INSERT INTO rollup_commits (txid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION communications_rollup_update() RETURNS trigger LANGUAGE plpgsql AS $$
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
    SELECT txid_current(), tenant_id, campaign_id, stage_name, alternative, shard, SUM(d), SUM(CASE WHEN flag = 1 THEN d ELSE 0 END)
    FROM (
        SELECT tenant_id, campaign_id, stage_name, alternative, hashtext(id) & 15 AS shard, 1 AS d,
               (SELECT c.result_flag FROM contacts c WHERE c.id = n.contact_id) AS flag
        FROM new_rows n WHERE alternative IS NOT NULL
        UNION ALL
        SELECT tenant_id, campaign_id, stage_name, alternative, hashtext(id) & 15 AS shard, -1 AS d,
               (SELECT c.result_flag FROM contacts c WHERE c.id = o.contact_id) AS flag
        FROM old_rows o WHERE alternative IS NOT NULL
    ) AS delta
    GROUP BY 2, 3, 4, 5, 6 HAVING SUM(d) <> 0 OR SUM(CASE WHEN flag = 1 THEN d ELSE 0 END) <> 0;
    INSERT INTO rollup_commits (txid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION communications_rollup_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO slot_rollup_deltas (txid, tenant_id, campaign_id, slot, stage_name, status, shard, communications)
    SELECT txid_current(), tenant_id, campaign_id, slot, stage_name, status, shard, SUM(d)
    FROM (
        SELECT tenant_id, campaign_id, start_date / 900000000 AS slot, stage_name, status, hashtext(id) & 3 AS shard, -1 AS d
        FROM old_rows
    ) AS delta
    GROUP BY tenant_id, campaign_id, slot, stage_name, status, shard HAVING SUM(d) <> 0;
    INSERT INTO alternative_rollup_deltas (txid, tenant_id, campaign_id, stage_name, alternative, shard, communications, successful)
    SELECT txid_current(), tenant_id, campaign_id, stage_name, alternative, shard, SUM(d), SUM(CASE WHEN flag = 1 THEN d ELSE 0 END)
    FROM (
        SELECT tenant_id, campaign_id, stage_name, alternative, hashtext(id) & 15 AS shard, -1 AS d,
               (SELECT c.result_flag FROM contacts c WHERE c.id = o.contact_id) AS flag
        FROM old_rows o WHERE alternative IS NOT NULL
    ) AS delta
    GROUP BY 2, 3, 4, 5, 6 HAVING SUM(d) <> 0 OR SUM(CASE WHEN flag = 1 THEN d ELSE 0 END) <> 0;
    INSERT INTO rollup_commits (txid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
