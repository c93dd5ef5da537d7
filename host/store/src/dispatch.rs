//! The engine's queries: claiming due communications with a lease,
//! marking missed ones, recording session outcomes, applying a strategy's
//! outcome to a contact, and finishing campaigns whose work is done.
//!
//! Claims are one `UPDATE … WHERE id IN (SELECT … LIMIT n)`: on PostgreSQL
//! the inner select takes `FOR UPDATE SKIP LOCKED`, so nodes claiming at
//! once split the work instead of queueing on it; SQLite has one writer.

use chrono::{DateTime, Duration, Utc};
use sqlx::any::AnyRow;
use stratagem_domain::{Communication, Contact, JsonMap};

use crate::contacts::{communication, flag, stored_contact, CONTACT_COLUMNS, COMMUNICATION_COLUMNS};
use crate::{from_json, get, micros, new_id, to_json, Backend, Result, Store, StoreError, StoredContact};

/// A communication claimed for sending.
#[derive(Debug, Clone)]
pub struct ClaimedCommunication {
    pub id: String,
    pub tenant_id: String,
    pub campaign_id: String,
    pub contact_id: String,
    pub communication: Communication,
}

/// A session that ended and awaits the AGGREGATION strategy.
#[derive(Debug, Clone)]
pub struct EndedSession {
    pub communication_id: String,
    pub tenant_id: String,
    pub campaign_id: String,
    pub contact_id: String,
    pub session_results: JsonMap,
}

/// How one communication's session went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionRecord {
    pub communication_id: String,
    /// The channel it went out on (after the A/B choice).
    pub channel: Option<String>,
    pub alternative: Option<String>,
    pub session_results: Option<JsonMap>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The conversation's transcript, for sessions that had one.
    pub messages: Vec<stratagem_domain::Message>,
}

/// How a started communication left its channel session, written with the
/// rest of its batch in one transaction.
#[derive(Debug, Clone)]
pub struct SessionStart {
    pub communication_id: String,
    /// The A/B label; `None` when no stage could be chosen.
    pub alternative: Option<String>,
    pub channel: String,
    /// The session's results if it ended; `None` if it stays open (a
    /// HUMAN task).
    pub ended: Option<JsonMap>,
}

/// What AGGREGATION made of one ended session, to apply with its batch.
#[derive(Debug, Clone)]
pub struct SessionOutcome {
    pub tenant_id: String,
    pub contact_id: String,
    /// The contact's revision the strategy saw.
    pub revision: i64,
    pub contact: Contact,
    pub communication_id: String,
    pub last_error: Option<serde_json::Value>,
}

/// A contact as the engine reads it: with the revision its update must match.
#[derive(Debug, Clone)]
pub struct ContactAtRevision {
    pub stored: StoredContact,
    pub revision: i64,
}

impl Store {
    pub(crate) fn skip_locked(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "FOR UPDATE OF c SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }

    /// Communications whose window passed before they started become
    /// MISSED — never sent later — and their session ends with
    /// `OutcomeStatus: MISSED`, so AGGREGATION can plan what comes next.
    /// `default_window` is the window of one planned without an end.
    pub async fn mark_missed(&self, now: DateTime<Utc>, default_window: Duration) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE communications SET status = 'MISSED', status_updated_at = $1, session_ended_at = $1, \
             session_results = $2, lease_until = NULL \
             WHERE status = 'PLANNED' AND COALESCE(end_date, start_date + $3) <= $1",
        )
        .bind(micros(now))
        .bind(r#"{"OutcomeStatus":"MISSED"}"#)
        .bind(default_window.num_microseconds().unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Claims up to `limit` communications of RUNNING campaigns that are due
    /// and inside their window — or were claimed by a node whose lease
    /// expired before their session ended (they are sent again under the
    /// same idempotency key) — leasing them until `lease_until`.
    pub async fn claim_due_communications(
        &self,
        now: DateTime<Utc>,
        default_window: Duration,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ClaimedCommunication>> {
        let sql = format!(
            "UPDATE communications SET status = 'IN_PROGRESS', status_updated_at = $1, lease_until = $2 WHERE id IN ( \
               SELECT c.id FROM communications c JOIN campaigns p ON p.id = c.campaign_id \
               WHERE p.status = 'RUNNING' AND ( \
                 (c.status = 'PLANNED' AND c.start_date <= $1 AND COALESCE(c.end_date, c.start_date + $3) > $1) \
                 OR (c.status = 'IN_PROGRESS' AND c.session_ended_at IS NULL AND c.lease_until < $1)) \
               ORDER BY c.start_date LIMIT $4 {}) \
             RETURNING tenant_id, campaign_id, contact_id, {COMMUNICATION_COLUMNS}",
            self.skip_locked()
        );
        let rows = sqlx::query(&sql)
            .bind(micros(now))
            .bind(micros(lease_until))
            .bind(default_window.num_microseconds().unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ClaimedCommunication {
                    id: get(row, "id")?,
                    tenant_id: get(row, "tenant_id")?,
                    campaign_id: get(row, "campaign_id")?,
                    contact_id: get(row, "contact_id")?,
                    communication: communication(row)?,
                })
            })
            .collect()
    }

    /// Records a send under its idempotency key and returns the outcome
    /// recorded first: a retried send gets the original outcome back.
    pub async fn record_send(
        &self,
        tenant_id: &str,
        communication_id: &str,
        channel: &str,
        outcome: &JsonMap,
        at: DateTime<Utc>,
    ) -> Result<JsonMap> {
        sqlx::query(
            "INSERT INTO channel_sends (communication_id, tenant_id, channel, outcome, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (communication_id) DO NOTHING",
        )
        .bind(communication_id)
        .bind(tenant_id)
        .bind(channel)
        .bind(to_json(outcome)?)
        .bind(micros(at))
        .execute(&self.pool)
        .await?;
        self.recorded_send(tenant_id, communication_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("send {communication_id} was recorded for another tenant")))
    }

    /// The outcome recorded under an idempotency key, if a send was.
    pub async fn recorded_send(&self, tenant_id: &str, communication_id: &str) -> Result<Option<JsonMap>> {
        let row = sqlx::query("SELECT outcome FROM channel_sends WHERE communication_id = $1 AND tenant_id = $2")
            .bind(communication_id)
            .bind(tenant_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| from_json(&get::<String>(&row, "outcome")?)).transpose()
    }

    /// How many sends are recorded for a campaign's communications (the
    /// exactly-once check of tests and benchmarks).
    pub async fn count_sends(&self, tenant_id: &str, campaign_id: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS sends FROM channel_sends s JOIN communications c ON c.id = s.communication_id \
             WHERE s.tenant_id = $1 AND c.campaign_id = $2",
        )
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await?;
        get(&row, "sends")
    }

    /// How many of a contact's communications went out before this one (a
    /// simulated persona answers by attempt). Read through the contact's
    /// index: counting the send log instead scanned it per send on
    /// PostgreSQL (measured: 100 sends/s at 20k).
    pub async fn count_contact_sends(&self, tenant_id: &str, contact_id: &str, communication_id: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS sends FROM communications WHERE contact_id = $1 AND tenant_id = $2 AND id <> $3 AND channel IS NOT NULL",
        )
        .bind(contact_id)
        .bind(tenant_id)
        .bind(communication_id)
        .fetch_one(&self.pool)
        .await?;
        get(&row, "sends")
    }

    /// The earliest start of a PLANNED communication of a campaign: where a
    /// simulation moves its clock when nothing is due.
    pub async fn next_planned_start(&self, tenant_id: &str, campaign_id: &str) -> Result<Option<DateTime<Utc>>> {
        let row = sqlx::query(
            "SELECT MIN(start_date) AS next FROM communications WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'PLANNED'",
        )
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await?;
        get::<Option<i64>>(&row, "next")?.map(crate::from_micros).transpose()
    }

    /// Every communication of a campaign with its contact's object id and
    /// how its session ended, by start date: a simulation's timeline.
    pub async fn campaign_timeline(&self, tenant_id: &str, campaign_id: &str) -> Result<Vec<(String, Communication, Option<JsonMap>)>> {
        let rows = sqlx::query(&format!(
            "SELECT t.object_id, m.session_results, {} FROM communications m JOIN contacts t ON t.id = m.contact_id \
             WHERE m.tenant_id = $1 AND m.campaign_id = $2 ORDER BY m.start_date, t.object_id, m.position",
            COMMUNICATION_COLUMNS.split(", ").map(|column| format!("m.{column}")).collect::<Vec<_>>().join(", ")
        ))
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let results = get::<Option<String>>(row, "session_results")?.map(|text| from_json(&text)).transpose()?;
                Ok((get(row, "object_id")?, communication(row)?, results))
            })
            .collect()
    }

    /// Takes one send of `channel`'s budget for the tenant in the given
    /// second (Unix time); `false` when `limit` sends were already taken.
    pub async fn take_send_slot(&self, tenant_id: &str, channel: &str, second: i64, limit: u32) -> Result<bool> {
        let row = sqlx::query(
            "INSERT INTO send_windows (tenant_id, channel, second, sends) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (tenant_id, channel, second) DO UPDATE SET sends = send_windows.sends + 1 RETURNING sends",
        )
        .bind(tenant_id)
        .bind(channel)
        .bind(second)
        .fetch_one(&self.pool)
        .await?;
        Ok(get::<i64>(&row, "sends")? <= i64::from(limit))
    }

    /// The most sends a tenant's send log has in one second.
    pub async fn busiest_send_second(&self, tenant_id: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COALESCE(MAX(n), 0) AS busiest FROM (SELECT COUNT(*) AS n FROM channel_sends WHERE tenant_id = $1 \
             GROUP BY created_at / 1000000) AS seconds",
        )
        .bind(tenant_id)
        .fetch_one(&self.pool)
        .await?;
        get(&row, "busiest")
    }

    pub async fn prune_send_windows(&self, before_second: i64) -> Result<()> {
        sqlx::query("DELETE FROM send_windows WHERE second < $1").bind(before_second).execute(&self.pool).await?;
        Ok(())
    }

    /// Puts a claimed communication back, unsent (its channel's rate limit
    /// was reached); it is claimed again while its window is open.
    pub async fn unclaim(&self, communication_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE communications SET status = 'PLANNED', lease_until = NULL \
             WHERE id = $1 AND status = 'IN_PROGRESS' AND session_ended_at IS NULL",
        )
        .bind(communication_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records how a batch of claimed communications left their channel, in
    /// one transaction: a send is recorded by its adapter before this, so a
    /// crash here only makes the next claim find the recorded outcome.
    pub async fn start_sessions(&self, started: &[SessionStart], now: DateTime<Utc>) -> Result<()> {
        let mut attempt = 0;
        loop {
            match self.try_start_sessions(started, now).await {
                Err(error) if is_transient_conflict(&error) && attempt < CONFLICT_RETRIES => attempt += 1,
                outcome => return outcome,
            }
        }
    }

    async fn try_start_sessions(&self, started: &[SessionStart], now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for start in started {
            let query = match &start.ended {
                Some(results) => sqlx::query(
                    "UPDATE communications SET session_results = $1, session_ended_at = $2, alternative = COALESCE($3, alternative), \
                     channel = COALESCE(NULLIF($4, ''), channel), lease_until = NULL \
                     WHERE id = $5 AND status = 'IN_PROGRESS' AND session_ended_at IS NULL",
                )
                .bind(to_json(results)?)
                .bind(micros(now)),
                None => sqlx::query(
                    "UPDATE communications SET alternative = COALESCE($1, alternative), channel = $2, lease_until = NULL \
                     WHERE id = $3 AND status = 'IN_PROGRESS' AND session_ended_at IS NULL",
                ),
            };
            query.bind(&start.alternative).bind(&start.channel).bind(&start.communication_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The channel session of a claimed communication ended.
    pub async fn end_session(
        &self,
        communication_id: &str,
        alternative: Option<&str>,
        channel: &str,
        session_results: &JsonMap,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE communications SET session_results = $1, session_ended_at = $2, alternative = COALESCE($3, alternative), \
             channel = COALESCE(NULLIF($4, ''), channel), lease_until = NULL \
             WHERE id = $5 AND status = 'IN_PROGRESS' AND session_ended_at IS NULL",
        )
        .bind(to_json(session_results)?)
        .bind(micros(now))
        .bind(alternative)
        .bind(channel)
        .bind(communication_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims up to `limit` ended sessions of RUNNING campaigns that await
    /// aggregation, leasing them until `lease_until`.
    pub async fn claim_ended_sessions(&self, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: i64) -> Result<Vec<EndedSession>> {
        let sql = format!(
            "UPDATE communications SET lease_until = $2 WHERE id IN ( \
               SELECT c.id FROM communications c JOIN campaigns p ON p.id = c.campaign_id \
               WHERE p.status = 'RUNNING' AND c.session_ended_at IS NOT NULL AND c.aggregated_at IS NULL \
                 AND (c.lease_until IS NULL OR c.lease_until < $1) \
               ORDER BY c.session_ended_at LIMIT $3 {}) \
             RETURNING id, tenant_id, campaign_id, contact_id, session_results",
            self.skip_locked()
        );
        let rows = sqlx::query(&sql).bind(micros(now)).bind(micros(lease_until)).bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row: &AnyRow| {
                Ok(EndedSession {
                    communication_id: get(row, "id")?,
                    tenant_id: get(row, "tenant_id")?,
                    campaign_id: get(row, "campaign_id")?,
                    contact_id: get(row, "contact_id")?,
                    session_results: get::<Option<String>>(row, "session_results")?
                        .map(|text| from_json(&text))
                        .transpose()?
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Several contacts, each of its tenant (`(tenant_id, contact_id)`), as
    /// [`Store::contact_at_revision`] reads one: two queries per 50 contacts
    /// instead of two per contact. Missing ones (deleted meanwhile, or not
    /// the tenant's) are absent from the map, keyed by contact id.
    pub async fn contacts_at_revision(&self, contacts: &[(&str, &str)]) -> Result<std::collections::HashMap<String, ContactAtRevision>> {
        let mut found = std::collections::HashMap::with_capacity(contacts.len());
        for chunk in contacts.chunks(50) {
            let list = (1..=chunk.len()).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
            let sql = format!("SELECT {CONTACT_COLUMNS}, revision, tenant_id FROM contacts WHERE id IN ({list})");
            let mut query = sqlx::query(&sql);
            for (_, id) in chunk {
                query = query.bind(*id);
            }
            let rows = query.fetch_all(&self.pool).await?;
            let sql = format!("SELECT contact_id, {COMMUNICATION_COLUMNS} FROM communications WHERE contact_id IN ({list}) ORDER BY contact_id, position");
            let mut query = sqlx::query(&sql);
            for (_, id) in chunk {
                query = query.bind(*id);
            }
            let mut communications: std::collections::HashMap<String, Vec<Communication>> = std::collections::HashMap::new();
            for row in query.fetch_all(&self.pool).await? {
                communications.entry(get(&row, "contact_id")?).or_default().push(communication(&row)?);
            }
            for row in &rows {
                let id: String = get(row, "id")?;
                let tenant: String = get(row, "tenant_id")?;
                if !chunk.iter().any(|(wanted, contact)| *wanted == tenant && *contact == id) {
                    continue;
                }
                let own = communications.remove(&id).unwrap_or_default();
                found.insert(id, ContactAtRevision { stored: stored_contact(row, own)?, revision: get(row, "revision")? });
            }
        }
        Ok(found)
    }

    pub async fn contact_at_revision(&self, tenant_id: &str, contact_id: &str) -> Result<ContactAtRevision> {
        let row = sqlx::query(&format!("SELECT {CONTACT_COLUMNS}, revision FROM contacts WHERE id = $1 AND tenant_id = $2"))
            .bind(contact_id)
            .bind(tenant_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("contact"))?;
        let communications = sqlx::query(&format!(
            "SELECT {COMMUNICATION_COLUMNS} FROM communications WHERE contact_id = $1 ORDER BY position"
        ))
        .bind(contact_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(ContactAtRevision {
            stored: stored_contact(&row, communications.iter().map(communication).collect::<Result<_>>()?)?,
            revision: get(&row, "revision")?,
        })
    }

    /// Applies a batch of AGGREGATION outcomes in one transaction (one
    /// commit instead of one per session). For each: the contact if still
    /// at the revision the strategy saw, its communications (existing ones
    /// updated in place, new ones planned, planned ones the strategy dropped
    /// cancelled), and the session marked aggregated. The result says which
    /// were applied (`false`: the contact moved on, nothing of it written;
    /// the caller runs the strategy again).
    pub async fn apply_session_outcomes(&self, outcomes: &[SessionOutcome], now: DateTime<Utc>) -> Result<Vec<bool>> {
        let mut attempt = 0;
        loop {
            match self.try_apply_session_outcomes(outcomes, now).await {
                Err(error) if is_transient_conflict(&error) && attempt < CONFLICT_RETRIES => attempt += 1,
                outcome => return outcome,
            }
        }
    }

    async fn try_apply_session_outcomes(&self, outcomes: &[SessionOutcome], now: DateTime<Utc>) -> Result<Vec<bool>> {
        let mut tx = self.begin_write().await?;
        let mut applied = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            let written = write_contact(
                &mut tx,
                &outcome.tenant_id,
                &outcome.contact_id,
                outcome.revision,
                &outcome.contact,
                outcome.last_error.as_ref(),
                Some(now),
                now,
            )
            .await?;
            if written {
                end_aggregated(&mut tx, &outcome.communication_id, now).await?;
            }
            applied.push(written);
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// Applies what CONTACT_ANSWER returned during a conversation, in one
    /// transaction, if the contact is still at `revision`. The session goes
    /// on: the contact does not count as processed yet.
    pub async fn apply_contact_answer(
        &self,
        tenant_id: &str,
        contact_id: &str,
        revision: i64,
        contact: &Contact,
        last_error: Option<&serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !write_contact(&mut tx, tenant_id, contact_id, revision, contact, last_error, None, now).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Gives a claimed session back at once (its contact changed while the
    /// strategy ran), instead of waiting for the lease to expire.
    pub async fn release_session(&self, communication_id: &str) -> Result<()> {
        sqlx::query("UPDATE communications SET lease_until = NULL WHERE id = $1 AND aggregated_at IS NULL")
            .bind(communication_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The sessions of a contact's communications that started, in order.
    pub async fn contact_sessions(&self, tenant_id: &str, contact_id: &str) -> Result<Vec<SessionRecord>> {
        let rows = sqlx::query(
            "SELECT id, channel, alternative, session_results, session_ended_at FROM communications \
             WHERE tenant_id = $1 AND contact_id = $2 AND (channel IS NOT NULL OR session_ended_at IS NOT NULL) ORDER BY position",
        )
        .bind(tenant_id)
        .bind(contact_id)
        .fetch_all(&self.pool)
        .await?;
        let mut messages = self.contact_messages(tenant_id, contact_id).await?;
        rows.iter()
            .map(|row| {
                let communication_id: String = get(row, "id")?;
                let (own, rest) = messages.drain(..).partition(|m| m.communication_id.as_deref() == Some(communication_id.as_str()));
                messages = rest;
                Ok(SessionRecord {
                    communication_id,
                    channel: get(row, "channel")?,
                    alternative: get(row, "alternative")?,
                    session_results: get::<Option<String>>(row, "session_results")?.map(|text| from_json(&text)).transpose()?,
                    ended_at: get::<Option<i64>>(row, "session_ended_at")?.map(crate::from_micros).transpose()?,
                    messages: own,
                })
            })
            .collect()
    }

    /// Of a campaign's processed contacts (a session outcome applied), how
    /// many there are and how many whose last strategy run failed.
    pub async fn strategy_failures(&self, tenant_id: &str, campaign_id: &str) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS processed, COUNT(last_error) AS failing FROM contacts \
             WHERE tenant_id = $1 AND campaign_id = $2 AND last_session_at IS NOT NULL",
        )
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await?;
        Ok((get(&row, "processed")?, get(&row, "failing")?))
    }

    /// Communications of a campaign not yet done: planned, in progress, or
    /// with a session whose outcome is not applied yet.
    pub async fn pending_communications(&self, tenant_id: &str, campaign_id: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS pending FROM communications WHERE tenant_id = $1 AND campaign_id = $2 \
             AND (status IN ('PLANNED', 'IN_PROGRESS') OR (session_ended_at IS NOT NULL AND aggregated_at IS NULL))",
        )
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await?;
        get(&row, "pending")
    }

    /// RUNNING campaigns in which every contact has a final result and no
    /// communication is pending become FINISHED. Returns their ids.
    pub async fn finish_done_campaigns(&self, now: DateTime<Utc>) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "UPDATE campaigns SET status = 'FINISHED', updated_at = $1 WHERE status = 'RUNNING' \
             AND EXISTS (SELECT 1 FROM contacts c WHERE c.campaign_id = campaigns.id) \
             AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.campaign_id = campaigns.id AND c.result_flag IS NULL) \
             AND NOT EXISTS (SELECT 1 FROM communications m WHERE m.campaign_id = campaigns.id \
               AND (m.status IN ('PLANNED', 'IN_PROGRESS') OR (m.session_ended_at IS NOT NULL AND m.aggregated_at IS NULL))) \
             RETURNING id",
        )
        .bind(micros(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| get(row, "id")).collect()
    }
}

/// Writes a strategy's contact if it is still at `revision`: its fields,
/// its communications (existing ones updated in place, new ones planned,
/// planned ones the strategy dropped cancelled). `session_ended_at` marks
/// the contact processed. Returns `false`, writing nothing, when the
/// contact moved on.
#[allow(clippy::too_many_arguments)]
async fn write_contact(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &str,
    contact_id: &str,
    revision: i64,
    contact: &Contact,
    last_error: Option<&serde_json::Value>,
    session_ended_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE contacts SET current_stage = $1, internal_data = $2, results = $3, result_flag = $4, result_datetime = $5, \
         communication_count = $6, last_error = $7, updated_at = $8, last_session_at = COALESCE($12, last_session_at), revision = revision + 1 \
         WHERE id = $9 AND tenant_id = $10 AND revision = $11",
    )
    .bind(&contact.current_stage)
    .bind(to_json(&contact.internal_data)?)
    .bind(to_json(&contact.results)?)
    .bind(flag(contact.result_flag))
    .bind(contact.result_datetime.map(micros))
    .bind(contact.communications.len() as i64)
    .bind(last_error.map(|e| e.to_string()))
    .bind(micros(now))
    .bind(contact_id)
    .bind(tenant_id)
    .bind(revision)
    .bind(session_ended_at.map(micros))
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(false);
    }
    let existing: Vec<String> = sqlx::query("SELECT id FROM communications WHERE contact_id = $1")
        .bind(contact_id)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| get(row, "id"))
        .collect::<Result<_>>()?;
    let mut kept = Vec::with_capacity(contact.communications.len());
    for (position, comm) in contact.communications.iter().enumerate() {
        let known = comm.id.as_ref().filter(|id| existing.contains(id));
        let id = known.cloned().unwrap_or_else(|| new_id("com"));
        let sql = if known.is_some() {
            "UPDATE communications SET position = $1, name = $2, stage_name = $3, start_date = $4, end_date = $5, \
             status = $6, status_detail = $7, status_updated_at = $8, flagged = 0, alternative = $9, parameters = $10 \
             WHERE id = $11 AND contact_id = $12"
        } else {
            "INSERT INTO communications (position, name, stage_name, start_date, end_date, status, status_detail, \
             status_updated_at, flagged, alternative, parameters, id, contact_id, tenant_id, campaign_id) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11, $12, tenant_id, campaign_id FROM contacts WHERE id = $12"
        };
        sqlx::query(sql)
            .bind(position as i64)
            .bind(&comm.name)
            .bind(&comm.stage_name)
            .bind(micros(comm.start_date))
            .bind(comm.end_date.map(micros))
            .bind(comm.status.status.as_str())
            .bind(&comm.status.detail)
            .bind(comm.status.updated_at.map(micros))
            .bind(&comm.alternative)
            .bind(to_json(&comm.parameters)?)
            .bind(&id)
            .bind(contact_id)
            .execute(&mut **tx)
            .await?;
        kept.push(id);
    }
    for id in existing.iter().filter(|id| !kept.contains(id)) {
        sqlx::query("UPDATE communications SET status = 'CANCELLED', status_updated_at = $1 WHERE id = $2 AND status = 'PLANNED'")
            .bind(micros(now))
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(true)
}

/// How often a batch is tried again after PostgreSQL aborted it to break a
/// deadlock with another node's batch (rows of both are locked in
/// different orders); the whole transaction rolled back, so retrying it
/// is safe.
const CONFLICT_RETRIES: u32 = 3;

fn is_transient_conflict(error: &StoreError) -> bool {
    match error {
        // deadlock_detected, serialization_failure
        StoreError::Database(sqlx::Error::Database(error)) => matches!(error.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}

/// The session's communication ends, whatever the strategy did to it.
async fn end_aggregated(tx: &mut sqlx::Transaction<'_, sqlx::Any>, communication_id: &str, now: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "UPDATE communications SET aggregated_at = $1, lease_until = NULL, flagged = 0, status_updated_at = $1, \
         status = CASE WHEN status IN ('IN_PROGRESS', 'PLANNED') THEN 'COMPLETED' ELSE status END WHERE id = $2",
    )
    .bind(micros(now))
    .bind(communication_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
