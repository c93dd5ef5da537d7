//! The engine's queries: claiming due communications with a lease,
//! marking missed ones, recording session outcomes, applying a strategy's
//! outcome to a contact, and finishing campaigns whose work is done.
//!
//! Claims are one `UPDATE … WHERE id IN (SELECT … LIMIT n)`: on PostgreSQL
//! the inner select takes `FOR UPDATE SKIP LOCKED`, so nodes claiming at
//! once split the work instead of queueing on it; SQLite has one writer.
//!
//! `channel_sends` records each send under its idempotency key. A send to
//! a provider that takes no key is announced there first, as a row without
//! an outcome ([`Store::begin_send`]), committed before the network call; a
//! claim left with such a row by a node that died becomes IN_DOUBT
//! ([`Store::mark_in_doubt`]) instead of being sent again.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use sqlx::any::AnyRow;
use stratagem_domain::{Communication, CommunicationState, CommunicationStatus, Contact, JsonMap};

use crate::contacts::{
    communication, flag, placeholders, stored_contact, COMMUNICATION_CHUNK, COMMUNICATION_COLUMNS, CONTACT_CHUNK, CONTACT_COLUMNS, ID_CHUNK,
};
use crate::{from_json, get, micros, new_id, to_json, Backend, Result, Store, StoreError, StoredContact};

/// A communication claimed for sending.
#[derive(Debug, Clone)]
pub struct ClaimedCommunication {
    pub id: String,
    pub tenant_id: String,
    pub campaign_id: String,
    pub contact_id: String,
    pub communication: Communication,
    /// The outcome of a send already recorded under this communication's
    /// key: a node that claimed it before sent it and died before its
    /// session was written.
    pub recorded: Option<JsonMap>,
}

/// A session that ended and awaits the AGGREGATION strategy.
#[derive(Debug, Clone)]
pub struct EndedSession {
    pub communication_id: String,
    pub tenant_id: String,
    pub campaign_id: String,
    pub contact_id: String,
    pub session_results: JsonMap,
    /// Its communication's state when the platform marked it IN_DOUBT: the
    /// strategy sees it so (the contact may have been read before), and it
    /// is kept whatever the strategy returns.
    pub in_doubt: Option<CommunicationState>,
}

/// Where a send under an idempotency key stands when an attempt asks to
/// make it ([`Store::begin_send`]).
#[derive(Debug, Clone, PartialEq)]
pub enum SendClaim {
    /// This attempt announced the send, and is the one to make it.
    Granted,
    /// Another attempt made it and recorded this outcome.
    Recorded(JsonMap),
    /// Another attempt announced it and has recorded no outcome: it is
    /// sending now, or died sending (then the claim becomes IN_DOUBT).
    Pending,
}

/// `session_results` of a communication whose send's outcome is unknown.
pub fn in_doubt_results(detail: &str) -> JsonMap {
    let mut results = JsonMap::new();
    results.insert("OutcomeStatus".into(), CommunicationStatus::InDoubt.as_str().into());
    results.insert("InDoubtDetail".into(), detail.into());
    results
}

/// Why the in-doubt sweep marks a communication.
const NODE_DIED: &str = "the node sending it stopped before recording whether it was delivered; it may have reached the \
                         contact, so it is not sent again";

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

/// How a started communication left its channel session. One that stays
/// open is written by [`Store::start_sessions`]; one that ended at its send
/// is written with its AGGREGATION outcome ([`SessionOutcome::start`]).
#[derive(Debug, Clone)]
pub struct SessionStart {
    pub communication_id: String,
    pub tenant_id: String,
    /// The A/B label; `None` when no stage could be chosen.
    pub alternative: Option<String>,
    pub channel: String,
    /// The session's results if it ended; `None` if it stays open (a
    /// HUMAN task).
    pub ended: Option<JsonMap>,
    /// The send reached no one outside (the simulated population), so its
    /// record is written here, in the transaction that ends its session,
    /// instead of committed on its own before: a crash before this commit
    /// leaves nothing sent to repeat. A send recorded earlier under the
    /// same key keeps its outcome.
    pub record_send: bool,
    /// When the send was made: its record's time, the second its channel's
    /// rate limit counted it in.
    pub sent_at: DateTime<Utc>,
}

/// What AGGREGATION made of one ended session, to apply with its batch.
#[derive(Debug, Clone)]
pub struct SessionOutcome {
    pub tenant_id: String,
    pub contact_id: String,
    /// The contact's revision the strategy saw.
    pub revision: i64,
    pub contact: Contact,
    /// The contact's communications as stored when the strategy ran.
    pub seen_communications: Vec<Communication>,
    pub communication_id: String,
    pub last_error: Option<serde_json::Value>,
    /// How the session started, when it ended at its send in this batch
    /// and nothing of it is written yet: the communication is then updated
    /// once, start, end and outcome together, instead of twice.
    pub start: Option<SessionStart>,
}

/// A contact as the engine reads it: with the revision its update must match.
#[derive(Debug, Clone)]
pub struct ContactAtRevision {
    pub stored: StoredContact,
    pub revision: i64,
    /// Its communications that went out on a channel, by id.
    pub sent: Vec<String>,
}

impl Store {
    pub(crate) fn skip_locked(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "FOR UPDATE OF c SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }

    /// Locks the rows a statement reads in a write transaction until it
    /// ends: on PostgreSQL; SQLite's write transaction holds the database.
    fn lock_rows(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "FOR UPDATE",
            Backend::Sqlite => "",
        }
    }

    /// Communications whose window passed before they started become
    /// MISSED — never sent later — and their session ends with
    /// `OutcomeStatus: MISSED`, so AGGREGATION can plan what comes next.
    /// `default_window` is the window of one planned without an end. A
    /// window that ends before it starts is marked once its start has
    /// passed. Each half of the query reads only the rows it marks
    /// (`communications_window_end`, and `communications_due`'s start-date
    /// range), whatever the planner's statistics: a campaign's many planned
    /// rows whose window is still open are not scanned every tick.
    pub async fn mark_missed(&self, now: DateTime<Utc>, default_window: Duration) -> Result<u64> {
        let open_ended_before = now.checked_sub_signed(default_window).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let done = sqlx::query(
            "UPDATE communications SET status = 'MISSED', status_updated_at = $1, session_ended_at = $1, \
             session_results = $2, lease_until = NULL \
             WHERE start_date <= $1 AND id IN ( \
               SELECT id FROM communications WHERE status = 'PLANNED' AND end_date IS NOT NULL AND end_date <= $1 \
               UNION ALL \
               SELECT id FROM communications WHERE status = 'PLANNED' AND end_date IS NULL AND start_date <= $3)",
        )
        .bind(micros(now))
        .bind(r#"{"OutcomeStatus":"MISSED"}"#)
        .bind(micros(open_ended_before))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Claims up to `limit` communications of RUNNING campaigns that are due
    /// and inside their window — or were claimed by a node whose lease
    /// expired before their session ended (they are sent again under the
    /// same idempotency key, unless a send to a provider without one was
    /// announced and has no outcome: [`Store::mark_in_doubt`] takes those)
    /// — leasing them until `lease_until`.
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
                 OR (c.status = 'IN_PROGRESS' AND c.session_ended_at IS NULL AND c.lease_until < $1 \
                   AND NOT EXISTS (SELECT 1 FROM channel_sends s WHERE s.communication_id = c.id AND s.outcome IS NULL))) \
               ORDER BY c.start_date LIMIT $4 {}) \
             RETURNING tenant_id, campaign_id, contact_id, {COMMUNICATION_COLUMNS}, \
               (SELECT s.outcome FROM channel_sends s WHERE s.communication_id = communications.id) AS recorded",
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
                    recorded: get::<Option<String>>(row, "recorded")?.map(|text| from_json(&text)).transpose()?,
                })
            })
            .collect()
    }

    /// Records a send under its idempotency key — the outcome of one
    /// announced by [`Store::begin_send`] fills its row — and returns the
    /// outcome recorded first: a retried send gets the original outcome
    /// back.
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
             ON CONFLICT (communication_id) DO UPDATE SET outcome = excluded.outcome \
             WHERE channel_sends.outcome IS NULL AND channel_sends.tenant_id = excluded.tenant_id",
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
        row.and_then(|row| get::<Option<String>>(&row, "outcome").transpose()).map(|text| from_json(&text?)).transpose()
    }

    /// Announces a send to a provider that takes no idempotency key, before
    /// its network call: a row without an outcome, committed at once. Only
    /// the attempt it grants sends; it then records the outcome
    /// ([`Store::record_send`]) — or gives the send up
    /// ([`Store::abandon_send`]) if the provider surely did not get it. A
    /// row left without an outcome makes the claim IN_DOUBT.
    pub async fn begin_send(&self, tenant_id: &str, communication_id: &str, channel: &str, at: DateTime<Utc>) -> Result<SendClaim> {
        let inserted = sqlx::query(
            "INSERT INTO channel_sends (communication_id, tenant_id, channel, outcome, created_at) VALUES ($1, $2, $3, NULL, $4) \
             ON CONFLICT (communication_id) DO NOTHING",
        )
        .bind(communication_id)
        .bind(tenant_id)
        .bind(channel)
        .bind(micros(at))
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(SendClaim::Granted);
        }
        Ok(match self.recorded_send(tenant_id, communication_id).await? {
            Some(outcome) => SendClaim::Recorded(outcome),
            None => SendClaim::Pending,
        })
    }

    /// Withdraws a send announced by [`Store::begin_send`] that surely
    /// reached no one (the server could not be reached, or refused it), so
    /// a later attempt may make it.
    pub async fn abandon_send(&self, tenant_id: &str, communication_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM channel_sends WHERE communication_id = $1 AND tenant_id = $2 AND outcome IS NULL")
            .bind(communication_id)
            .bind(tenant_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends the session of a claimed communication whose send may have
    /// reached the contact and whose outcome is unknown: IN_DOUBT, with
    /// `session_results` `{"OutcomeStatus": "IN_DOUBT", "InDoubtDetail":
    /// detail}`, and the announced send's row gets them as its outcome.
    /// Returns whether the claim was still in progress.
    pub async fn end_in_doubt(
        &self,
        communication_id: &str,
        alternative: Option<&str>,
        channel: &str,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let results = to_json(&in_doubt_results(detail))?;
        let mut tx = self.begin_write().await?;
        let ended = sqlx::query(
            "UPDATE communications SET status = 'IN_DOUBT', status_detail = $1, status_updated_at = $2, session_results = $3, \
             session_ended_at = $2, alternative = COALESCE($4, alternative), channel = COALESCE(NULLIF($5, ''), channel), \
             lease_until = NULL WHERE id = $6 AND status = 'IN_PROGRESS' AND session_ended_at IS NULL",
        )
        .bind(detail)
        .bind(micros(now))
        .bind(&results)
        .bind(alternative)
        .bind(channel)
        .bind(communication_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE channel_sends SET outcome = $1 WHERE communication_id = $2 AND outcome IS NULL")
            .bind(&results)
            .bind(communication_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ended.rows_affected() == 1)
    }

    /// Claims whose lease expired with a send announced before
    /// `announced_before` and no outcome recorded — their node died between
    /// the network call and the record — become IN_DOUBT, their session
    /// ended with `{"OutcomeStatus": "IN_DOUBT", "InDoubtDetail": …}` for
    /// AGGREGATION. They are never sent again. `announced_before` gives a
    /// live node a lease's time to record a slow send. Reads only the
    /// announced sends without an outcome (`channel_sends_pending`).
    pub async fn mark_in_doubt(&self, now: DateTime<Utc>, announced_before: DateTime<Utc>) -> Result<u64> {
        let results = to_json(&in_doubt_results(NODE_DIED))?;
        let rows = sqlx::query(
            "UPDATE communications SET status = 'IN_DOUBT', status_detail = $2, status_updated_at = $1, session_results = $3, \
             session_ended_at = $1, lease_until = NULL, \
             channel = COALESCE(communications.channel, \
               (SELECT s.channel FROM channel_sends s WHERE s.communication_id = communications.id)) \
             WHERE id IN (SELECT communication_id FROM channel_sends WHERE outcome IS NULL AND created_at < $4) \
               AND status = 'IN_PROGRESS' AND session_ended_at IS NULL AND lease_until < $1 \
             RETURNING id",
        )
        .bind(micros(now))
        .bind(NODE_DIED)
        .bind(&results)
        .bind(micros(announced_before))
        .fetch_all(&self.pool)
        .await?;
        let marked: Vec<String> = rows.iter().map(|row| get(row, "id")).collect::<Result<_>>()?;
        // Their announced sends take the same results as outcome, and so
        // leave the pending index. (Should this fail, the rows only stay
        // in it: the communications are marked.)
        for chunk in marked.chunks(ID_CHUNK) {
            let sql = format!(
                "UPDATE channel_sends SET outcome = $1 WHERE outcome IS NULL AND communication_id IN ({})",
                placeholders(2, 1, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(&results);
            for id in chunk {
                query = query.bind(id.clone());
            }
            query.execute(&self.pool).await?;
        }
        Ok(marked.len() as u64)
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

    /// Records, in one transaction, the sessions of a batch that stay open
    /// (a Human task, a conversation): their A/B label and channel; the
    /// claim's lease ends, since the session's own clock runs now. Sessions
    /// that ended at their send are written with their outcome
    /// ([`Store::apply_session_outcomes`]).
    pub async fn start_sessions(&self, started: &[SessionStart]) -> Result<()> {
        debug_assert!(started.iter().all(|start| start.ended.is_none()), "ended sessions are written with their outcome");
        let mut attempt = 0;
        loop {
            match self.try_start_sessions(started).await {
                Err(error) if is_transient_conflict(&error) && attempt < CONFLICT_RETRIES => attempt += 1,
                outcome => return outcome,
            }
        }
    }

    async fn try_start_sessions(&self, started: &[SessionStart]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for chunk in started.chunks(COMMUNICATION_CHUNK) {
            let sql = format!(
                "WITH v (communication_id, label, sent_on) AS (VALUES {}) \
                 UPDATE communications SET alternative = COALESCE(v.label, communications.alternative), \
                   channel = COALESCE(NULLIF(v.sent_on, ''), communications.channel), lease_until = NULL \
                 FROM v WHERE communications.id IN ({}) AND communications.id = v.communication_id \
                   AND communications.status = 'IN_PROGRESS' AND communications.session_ended_at IS NULL",
                placeholders(1, 3, chunk.len()),
                column_params(1, 3, chunk.len()),
            );
            let mut query = sqlx::query(&sql);
            for start in chunk {
                query = query.bind(start.communication_id.clone()).bind(start.alternative.clone()).bind(start.channel.clone());
            }
            query.execute(&mut *tx).await?;
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
             RETURNING id, tenant_id, campaign_id, contact_id, session_results, status, status_detail, status_updated_at",
            self.skip_locked()
        );
        let rows = sqlx::query(&sql).bind(micros(now)).bind(micros(lease_until)).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(ended_session).collect()
    }

    /// Several contacts, each of its tenant (`(tenant_id, contact_id)`), as
    /// [`Store::contact_at_revision`] reads one: two queries per 200 contacts
    /// instead of two per contact. Missing ones (deleted meanwhile, or not
    /// the tenant's) are absent from the map, keyed by contact id.
    pub async fn contacts_at_revision(&self, contacts: &[(&str, &str)]) -> Result<HashMap<String, ContactAtRevision>> {
        let mut found = HashMap::with_capacity(contacts.len());
        for chunk in contacts.chunks(ID_CHUNK) {
            let list = (1..=chunk.len()).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
            let sql = format!("SELECT {CONTACT_COLUMNS}, revision, tenant_id FROM contacts WHERE id IN ({list})");
            let mut query = sqlx::query(&sql);
            for (_, id) in chunk {
                query = query.bind(*id);
            }
            let rows = query.fetch_all(&self.pool).await?;
            let sql = format!(
                "SELECT contact_id, channel, {COMMUNICATION_COLUMNS} FROM communications WHERE contact_id IN ({list}) ORDER BY contact_id, position"
            );
            let mut query = sqlx::query(&sql);
            for (_, id) in chunk {
                query = query.bind(*id);
            }
            let rows_of_communications = query.fetch_all(&self.pool).await?;
            let mut communications: HashMap<String, Vec<&AnyRow>> = HashMap::new();
            for row in &rows_of_communications {
                communications.entry(get(row, "contact_id")?).or_default().push(row);
            }
            for row in &rows {
                let id: String = get(row, "id")?;
                let tenant: String = get(row, "tenant_id")?;
                if !chunk.iter().any(|(wanted, contact)| *wanted == tenant && *contact == id) {
                    continue;
                }
                let own = communications.remove(&id).unwrap_or_default();
                found.insert(id, contact_at_revision(row, &own)?);
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
            "SELECT channel, {COMMUNICATION_COLUMNS} FROM communications WHERE contact_id = $1 ORDER BY position"
        ))
        .bind(contact_id)
        .fetch_all(&self.pool)
        .await?;
        contact_at_revision(&row, &communications.iter().collect::<Vec<_>>())
    }

    /// Applies a batch of AGGREGATION outcomes in one transaction (one
    /// commit instead of one per session). For each: the contact if still
    /// at the revision the strategy saw, its communications (existing ones
    /// updated in place, new ones planned, planned ones the strategy dropped
    /// cancelled), and the session marked aggregated, with its start when
    /// that is written here too. The result says which were applied; one
    /// that was not is left for a later run: its session recorded as ended
    /// and released (the contact moved on: the strategy runs again), or
    /// untouched when a session started here is no longer this claim's.
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
        let starting: Vec<&str> = outcomes.iter().filter(|o| o.start.is_some()).map(|o| o.communication_id.as_str()).collect();
        let claimed = self.still_claimed(&mut tx, &starting).await?;
        let owned: Vec<&SessionOutcome> =
            outcomes.iter().filter(|o| o.start.is_none() || claimed.contains(&o.communication_id)).collect();
        let writes: Vec<ContactWrite<'_>> = owned
            .iter()
            .map(|outcome| ContactWrite {
                tenant_id: &outcome.tenant_id,
                contact_id: &outcome.contact_id,
                revision: outcome.revision,
                contact: &outcome.contact,
                seen_communications: &outcome.seen_communications,
                last_error: outcome.last_error.as_ref(),
                session: Some(Session { communication_id: &outcome.communication_id, start: outcome.start.as_ref() }),
            })
            .collect();
        let written = write_contacts(&mut tx, self.lock_rows(), &writes, Some(now), now).await?;
        let sent: Vec<&SessionStart> = owned.iter().filter_map(|o| o.start.as_ref()).filter(|start| start.record_send).collect();
        record_sends(&mut tx, &sent).await?;
        // Sessions not ended with the strategy's update of their
        // communication: it left that unchanged, or it was not applied.
        let ends: Vec<SessionEnd<'_>> = owned
            .iter()
            .zip(&written.applied)
            .filter(|(outcome, _)| !written.aggregated.contains(&outcome.communication_id))
            .map(|(outcome, applied)| SessionEnd { communication_id: &outcome.communication_id, start: outcome.start.as_ref(), aggregated: *applied })
            .collect();
        end_sessions(&mut tx, &ends, now).await?;
        tx.commit().await?;
        let applied: HashSet<&str> =
            owned.iter().zip(&written.applied).filter(|(_, applied)| **applied).map(|(o, _)| o.communication_id.as_str()).collect();
        Ok(outcomes.iter().map(|outcome| applied.contains(outcome.communication_id.as_str())).collect())
    }

    /// Of sessions started by this batch's claims, the ones still claimed
    /// (in progress, not ended), locked until the transaction ends on
    /// PostgreSQL: a claim whose lease expired may be another node's now.
    async fn still_claimed(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>, ids: &[&str]) -> Result<HashSet<String>> {
        let lock = self.lock_rows();
        let mut claimed = HashSet::new();
        for chunk in ids.chunks(ID_CHUNK) {
            let sql = format!(
                "SELECT id FROM communications WHERE id IN ({}) AND status = 'IN_PROGRESS' AND session_ended_at IS NULL {lock}",
                placeholders(1, 1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&mut **tx).await? {
                claimed.insert(get(&row, "id")?);
            }
        }
        Ok(claimed)
    }

    /// Applies what CONTACT_ANSWER returned during a conversation, in one
    /// transaction, if the contact is still as the strategy saw it (`seen`).
    /// The session goes on: the contact does not count as processed yet.
    pub async fn apply_contact_answer(
        &self,
        tenant_id: &str,
        seen: &ContactAtRevision,
        contact: &Contact,
        last_error: Option<&serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let write = ContactWrite {
            tenant_id,
            contact_id: &seen.stored.id,
            revision: seen.revision,
            contact,
            seen_communications: &seen.stored.contact.communications,
            last_error,
            session: None,
        };
        if write_contacts(&mut tx, self.lock_rows(), &[write], None, now).await?.applied != [true] {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
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

/// A communication row (`id`, `tenant_id`, `campaign_id`, `contact_id`,
/// `session_results`, `status`, `status_detail`, `status_updated_at`) as a
/// session awaiting AGGREGATION.
fn ended_session(row: &AnyRow) -> Result<EndedSession> {
    let in_doubt = match get::<String>(row, "status")?.as_str() {
        "IN_DOUBT" => Some(CommunicationState {
            status: CommunicationStatus::InDoubt,
            detail: get(row, "status_detail")?,
            updated_at: get::<Option<i64>>(row, "status_updated_at")?.map(crate::from_micros).transpose()?,
        }),
        _ => None,
    };
    Ok(EndedSession {
        communication_id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        campaign_id: get(row, "campaign_id")?,
        contact_id: get(row, "contact_id")?,
        session_results: get::<Option<String>>(row, "session_results")?.map(|text| from_json(&text)).transpose()?.unwrap_or_default(),
        in_doubt,
    })
}

/// The sessions of a contact's communications that started, in order,
/// with their transcripts (two queries: run them in a snapshot).
pub(crate) async fn read_sessions(connection: &mut sqlx::AnyConnection, tenant_id: &str, contact_id: &str) -> Result<Vec<SessionRecord>> {
    let rows = sqlx::query(
        "SELECT id, channel, alternative, session_results, session_ended_at FROM communications \
         WHERE tenant_id = $1 AND contact_id = $2 AND (channel IS NOT NULL OR session_ended_at IS NOT NULL) ORDER BY position",
    )
    .bind(tenant_id)
    .bind(contact_id)
    .fetch_all(&mut *connection)
    .await?;
    let mut messages = crate::conversations::contact_messages(connection, tenant_id, contact_id).await?;
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

/// A contact row (with `revision`) and its communications' rows (with
/// `channel`), in position order.
fn contact_at_revision(row: &AnyRow, communications: &[&AnyRow]) -> Result<ContactAtRevision> {
    let mut sent = Vec::new();
    for row in communications {
        if get::<Option<String>>(row, "channel")?.is_some() {
            sent.push(get(row, "id")?);
        }
    }
    Ok(ContactAtRevision {
        stored: stored_contact(row, communications.iter().map(|row| communication(row)).collect::<Result<_>>()?)?,
        revision: get(row, "revision")?,
        sent,
    })
}

/// A strategy's contact, to be written if it is still at `revision`.
struct ContactWrite<'a> {
    tenant_id: &'a str,
    contact_id: &'a str,
    revision: i64,
    contact: &'a Contact,
    /// Its communications as the strategy saw them, in stored order.
    seen_communications: &'a [Communication],
    last_error: Option<&'a serde_json::Value>,
    /// The ended session this write aggregates: if the write updates its
    /// communication, the same update ends it (one row version, not two).
    session: Option<Session<'a>>,
}

/// An ended session whose outcome a contact write applies.
#[derive(Clone, Copy)]
struct Session<'a> {
    communication_id: &'a str,
    /// How it started, when that is written with the outcome.
    start: Option<&'a SessionStart>,
}

impl ContactWrite<'_> {
    /// The stored communications the strategy changed (other than its
    /// session's), each with the status it saw them in.
    fn changed_communications(&self) -> impl Iterator<Item = (&str, &str)> {
        self.contact.communications.iter().filter_map(|returned| {
            let id = returned.id.as_deref()?;
            let seen = self.seen_communications.iter().find(|seen| seen.id.as_deref() == Some(id))?;
            let ours = self.session.is_some_and(|session| session.communication_id == id);
            let unchanged = !seen.flagged && *seen == Communication { flagged: false, ..returned.clone() };
            (!ours && !unchanged).then_some((id, seen.status.status.as_str()))
        })
    }

    /// Whether the strategy returned this stored communication as it was
    /// (its `flagged` mark aside, which is never stored set): then its row
    /// is left alone — fewer row versions, and no stale copy written over
    /// a claim another tick made meanwhile.
    fn unchanged(&self, position: usize, returned: &Communication) -> bool {
        self.seen_communications
            .get(position)
            .is_some_and(|seen| !seen.flagged && *seen == Communication { flagged: false, ..returned.clone() })
    }
}

/// A communication row a contact write puts in place.
struct CommunicationRow<'a> {
    id: String,
    contact_id: &'a str,
    position: usize,
    communication: &'a Communication,
    /// The write's session, when this is its communication.
    session: Option<Session<'a>>,
}

/// What [`write_contacts`] did.
struct Written {
    /// Per write, whether it was applied.
    applied: Vec<bool>,
    /// The writes' sessions whose communication was updated and marked
    /// aggregated with it.
    aggregated: HashSet<String>,
}

/// Writes strategies' contacts that are still at the revision each saw:
/// their fields and communications (existing ones updated in place, new
/// ones planned, planned ones the strategy dropped cancelled; ones it
/// returned unchanged are not rewritten). A few multi-row statements per
/// batch, not several per contact: on PostgreSQL each statement also fires
/// the rollup triggers. `session_ended_at` marks the contacts processed.
/// Says per write whether it was applied: `false`, with nothing of it
/// written, when its contact moved on — or when an earlier write of the
/// batch is for the same contact (both saw one revision; the caller runs
/// the later one again).
async fn write_contacts(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    lock: &str,
    writes: &[ContactWrite<'_>],
    session_ended_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Written> {
    let mut seen = HashSet::new();
    let first: Vec<&ContactWrite<'_>> = writes.iter().filter(|write| seen.insert(write.contact_id)).collect();
    let moved_on = communications_moved_on(tx, lock, &first).await?;
    let first: Vec<&ContactWrite<'_>> = first.into_iter().filter(|write| !moved_on.contains(write.contact_id)).collect();
    let mut updated: HashSet<String> = HashSet::new();
    for chunk in first.chunks(CONTACT_CHUNK) {
        let sql = format!(
            "WITH v (contact_id, owner, seen_revision, new_stage, new_internal_data, new_results, new_flag, new_flagged_at, \
               new_count, new_error) AS (VALUES {}) \
             UPDATE contacts SET current_stage = v.new_stage, internal_data = v.new_internal_data, results = v.new_results, \
               result_flag = v.new_flag, result_datetime = v.new_flagged_at, communication_count = v.new_count, \
               last_error = v.new_error, updated_at = ${n}, last_session_at = COALESCE(${}, contacts.last_session_at), \
               revision = contacts.revision + 1 \
             FROM v WHERE contacts.id IN ({}) AND contacts.id = v.contact_id AND contacts.tenant_id = v.owner \
               AND contacts.revision = v.seen_revision \
             RETURNING id",
            placeholders(1, 10, chunk.len()),
            chunk.len() * 10 + 2,
            column_params(1, 10, chunk.len()),
            n = chunk.len() * 10 + 1,
        );
        let mut query = sqlx::query(&sql);
        for write in chunk {
            let contact = write.contact;
            query = query
                .bind(write.contact_id.to_owned())
                .bind(write.tenant_id.to_owned())
                .bind(write.revision)
                .bind(contact.current_stage.clone())
                .bind(to_json(&contact.internal_data)?)
                .bind(to_json(&contact.results)?)
                .bind(flag(contact.result_flag))
                .bind(contact.result_datetime.map(micros))
                .bind(contact.communications.len() as i64)
                .bind(write.last_error.map(|e| e.to_string()));
        }
        for row in query.bind(micros(now)).bind(session_ended_at.map(micros)).fetch_all(&mut **tx).await? {
            updated.insert(get(&row, "id")?);
        }
    }
    let mut taken = HashSet::new();
    let applied: Vec<bool> =
        writes.iter().map(|write| updated.contains(write.contact_id) && taken.insert(write.contact_id)).collect();
    let written: Vec<&ContactWrite<'_>> = writes.iter().zip(&applied).filter(|(_, applied)| **applied).map(|(write, _)| write).collect();

    let mut existing: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in written.chunks(ID_CHUNK) {
        let sql = format!("SELECT id, contact_id FROM communications WHERE contact_id IN ({})", placeholders(1, 1, chunk.len()));
        let mut query = sqlx::query(&sql);
        for write in chunk {
            query = query.bind(write.contact_id.to_owned());
        }
        for row in query.fetch_all(&mut **tx).await? {
            existing.entry(get(&row, "contact_id")?).or_default().push(get(&row, "id")?);
        }
    }
    let (mut known, mut planned, mut dropped) = (Vec::new(), Vec::new(), Vec::new());
    for write in &written {
        let stored = existing.get(write.contact_id).map(Vec::as_slice).unwrap_or_default();
        let mut kept = HashSet::new();
        for (position, communication) in write.contact.communications.iter().enumerate() {
            // An id the contact does not own, or one returned twice, is a
            // new communication.
            match communication.id.as_ref().filter(|id| stored.contains(id) && kept.insert(id.as_str())) {
                Some(_) if write.unchanged(position, communication) => {}
                Some(id) => known.push(CommunicationRow {
                    id: id.clone(),
                    contact_id: write.contact_id,
                    position,
                    communication,
                    session: write.session.filter(|session| session.communication_id == id),
                }),
                None => planned.push(CommunicationRow {
                    id: new_id("com"),
                    contact_id: write.contact_id,
                    position,
                    communication,
                    session: None,
                }),
            }
        }
        dropped.extend(stored.iter().filter(|id| !kept.contains(id.as_str())).cloned());
    }
    // A session's communication ends as `end_sessions` ends it.
    for chunk in known.chunks(COMMUNICATION_CHUNK) {
        let sql = format!(
            "WITH v (communication_id, owner, {COMMUNICATION_VALUES}) AS (VALUES {}) \
             UPDATE communications SET position = v.new_position, name = v.new_name, stage_name = v.new_stage_name, \
               start_date = v.new_start_date, end_date = v.new_end_date, \
               status = CASE WHEN v.ends_session = 1 AND v.new_status IN ('IN_PROGRESS', 'PLANNED') THEN 'COMPLETED' \
                 ELSE v.new_status END, \
               status_detail = v.new_status_detail, \
               status_updated_at = CASE WHEN v.ends_session = 1 THEN ${n} ELSE v.new_status_updated_at END, \
               flagged = 0, alternative = v.new_alternative, parameters = v.new_parameters, \
               aggregated_at = CASE WHEN v.ends_session = 1 THEN ${n} ELSE communications.aggregated_at END, \
               lease_until = CASE WHEN v.ends_session = 1 THEN NULL ELSE communications.lease_until END, \
               session_ended_at = CASE WHEN v.ends_session = 1 THEN COALESCE(communications.session_ended_at, ${n}) \
                 ELSE communications.session_ended_at END, \
               session_results = COALESCE(v.new_session_results, communications.session_results), \
               channel = COALESCE(NULLIF(v.new_channel, ''), communications.channel) \
             FROM v WHERE communications.id IN ({}) AND communications.id = v.communication_id \
               AND communications.contact_id = v.owner",
            placeholders(1, COMMUNICATION_ROW, chunk.len()),
            column_params(1, COMMUNICATION_ROW, chunk.len()),
            n = chunk.len() * COMMUNICATION_ROW + 1,
        );
        bind_communications(sqlx::query(&sql), chunk)?.bind(micros(now)).execute(&mut **tx).await?;
    }
    let aggregated = known.iter().filter(|row| row.session.is_some()).map(|row| row.id.clone()).collect();
    for chunk in planned.chunks(COMMUNICATION_CHUNK) {
        let sql = format!(
            "WITH v (communication_id, owner, {COMMUNICATION_VALUES}) AS (VALUES {}) \
             INSERT INTO communications (id, contact_id, position, name, stage_name, start_date, end_date, status, status_detail, \
               status_updated_at, flagged, alternative, parameters, tenant_id, campaign_id) \
             SELECT v.communication_id, v.owner, v.new_position, v.new_name, v.new_stage_name, v.new_start_date, v.new_end_date, \
               v.new_status, v.new_status_detail, v.new_status_updated_at, 0, v.new_alternative, v.new_parameters, c.tenant_id, c.campaign_id \
             FROM v JOIN contacts c ON c.id = v.owner WHERE c.id IN ({})",
            placeholders(1, COMMUNICATION_ROW, chunk.len()),
            column_params(2, COMMUNICATION_ROW, chunk.len()),
        );
        bind_communications(sqlx::query(&sql), chunk)?.execute(&mut **tx).await?;
    }
    for chunk in dropped.chunks(ID_CHUNK) {
        let sql = format!(
            "UPDATE communications SET status = 'CANCELLED', status_updated_at = $1 WHERE status = 'PLANNED' AND id IN ({})",
            placeholders(2, 1, chunk.len())
        );
        let mut query = sqlx::query(&sql).bind(micros(now));
        for id in chunk {
            query = query.bind(id.clone());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(Written { applied, aggregated })
}

/// The contacts of `writes` one of whose communications the strategy
/// changed while it changed under the strategy: another node's tick
/// claimed it, or it was marked MISSED. The contact's revision does not
/// cover that (a claim does not touch the contact), and writing the
/// strategy's copy would undo the claim. Such a write is not applied (its
/// strategy runs again on what is there now). The rows read are locked
/// until the transaction ends, so no claim slips in before the write.
async fn communications_moved_on<'w>(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    lock: &str,
    writes: &[&ContactWrite<'w>],
) -> Result<HashSet<&'w str>> {
    let mut expected: HashMap<&str, (&str, &'w str)> = HashMap::new();
    for write in writes {
        for (id, status) in write.changed_communications() {
            expected.insert(id, (status, write.contact_id));
        }
    }
    let ids: Vec<&str> = expected.keys().copied().collect();
    let mut moved_on = HashSet::new();
    for chunk in ids.chunks(ID_CHUNK) {
        let sql = format!("SELECT id, status FROM communications WHERE id IN ({}) {lock}", placeholders(1, 1, chunk.len()));
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut **tx).await? {
            let (id, status): (String, String) = (get(&row, "id")?, get(&row, "status")?);
            if let Some((seen, contact_id)) = expected.get(id.as_str()) {
                if *seen != status {
                    moved_on.insert(*contact_id);
                }
            }
        }
    }
    Ok(moved_on)
}

/// The parameters of one column of a `VALUES` list (`$first`, then every
/// `columns`-th), for a `WHERE id IN (…)` beside a join on that column.
/// The join alone left PostgreSQL's plan to statistics, which lag behind a
/// running campaign: it bitmap-scanned the status and tenant indexes
/// (5–12 ms per 50-row statement at 20 000 rows) instead of reading the
/// rows by primary key, which the constant list makes the obvious plan.
fn column_params(first: usize, columns: usize, rows: usize) -> String {
    (0..rows).map(|row| format!("${}", first + row * columns)).collect::<Vec<_>>().join(", ")
}

/// The columns a communication row binds after its id and contact id; the
/// last three end a session (`ends_session` 0 or 1, and how it started
/// when that is written with it); inserts ignore them.
const COMMUNICATION_VALUES: &str = "new_position, new_name, new_stage_name, new_start_date, new_end_date, new_status, \
     new_status_detail, new_status_updated_at, new_alternative, new_parameters, ends_session, new_session_results, new_channel";

/// Parameters per communication row: id, contact id and the values above.
const COMMUNICATION_ROW: usize = 15;

fn bind_communications<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    rows: &[CommunicationRow<'_>],
) -> Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>> {
    for row in rows {
        let comm = row.communication;
        query = query
            .bind(row.id.clone())
            .bind(row.contact_id.to_owned())
            .bind(row.position as i64)
            .bind(comm.name.clone())
            .bind(comm.stage_name.clone())
            .bind(micros(comm.start_date))
            .bind(comm.end_date.map(micros))
            .bind(comm.status.status.as_str())
            .bind(comm.status.detail.clone())
            .bind(comm.status.updated_at.map(micros))
            .bind(comm.alternative.clone())
            .bind(to_json(&comm.parameters)?)
            .bind(i64::from(row.session.is_some()))
            .bind(session_results(row.session.and_then(|session| session.start))?)
            .bind(row.session.and_then(|session| session.start).map(|start| start.channel.clone()));
    }
    Ok(query)
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

/// The results a session that ended at its send is written with.
fn session_results(start: Option<&SessionStart>) -> Result<Option<String>> {
    start.and_then(|start| start.ended.as_ref()).map(to_json).transpose()
}

/// Sends that reached no one outside (the simulated population), recorded
/// in the transaction that ends their sessions; a send recorded earlier
/// under the same key keeps its record.
async fn record_sends(tx: &mut sqlx::Transaction<'_, sqlx::Any>, sent: &[&SessionStart]) -> Result<()> {
    for chunk in sent.chunks(COMMUNICATION_CHUNK) {
        let sql = format!(
            "INSERT INTO channel_sends (communication_id, tenant_id, channel, outcome, created_at) VALUES {} \
             ON CONFLICT (communication_id) DO NOTHING",
            placeholders(1, 5, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for start in chunk {
            query = query
                .bind(start.communication_id.clone())
                .bind(start.tenant_id.clone())
                .bind(start.channel.clone())
                .bind(session_results(Some(start))?)
                .bind(micros(start.sent_at));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// A session an outcome batch ends or gives back.
struct SessionEnd<'a> {
    communication_id: &'a str,
    /// How it started, when that is written here.
    start: Option<&'a SessionStart>,
    /// Its outcome was applied: it is done. Otherwise it stays ended and
    /// awaiting AGGREGATION, released for the next claim.
    aggregated: bool,
}

/// Ends sessions whose communication the contact write left alone, and
/// releases the ones whose outcome was not applied. Their start, if
/// written here, is written as [`Store::start_sessions`] writes one, with
/// the session's end.
async fn end_sessions(tx: &mut sqlx::Transaction<'_, sqlx::Any>, ends: &[SessionEnd<'_>], now: DateTime<Utc>) -> Result<()> {
    for chunk in ends.chunks(COMMUNICATION_CHUNK) {
        let sql = format!(
            "WITH v (communication_id, aggregated, results, label, sent_on) AS (VALUES {}) \
             UPDATE communications SET \
               session_results = COALESCE(v.results, communications.session_results), \
               session_ended_at = COALESCE(communications.session_ended_at, ${n}), \
               alternative = COALESCE(v.label, communications.alternative), \
               channel = COALESCE(NULLIF(v.sent_on, ''), communications.channel), \
               lease_until = NULL, \
               aggregated_at = CASE WHEN v.aggregated = 1 THEN ${n} ELSE NULL END, \
               flagged = CASE WHEN v.aggregated = 1 THEN 0 ELSE communications.flagged END, \
               status_updated_at = CASE WHEN v.aggregated = 1 THEN ${n} ELSE communications.status_updated_at END, \
               status = CASE WHEN v.aggregated = 1 AND communications.status IN ('IN_PROGRESS', 'PLANNED') THEN 'COMPLETED' \
                 ELSE communications.status END \
             FROM v WHERE communications.id IN ({}) AND communications.id = v.communication_id \
               AND communications.aggregated_at IS NULL",
            placeholders(1, 5, chunk.len()),
            column_params(1, 5, chunk.len()),
            n = chunk.len() * 5 + 1,
        );
        let mut query = sqlx::query(&sql);
        for end in chunk {
            query = query
                .bind(end.communication_id.to_owned())
                .bind(i64::from(end.aggregated))
                .bind(session_results(end.start)?)
                .bind(end.start.and_then(|start| start.alternative.clone()))
                .bind(end.start.map(|start| start.channel.clone()));
        }
        query.bind(micros(now)).execute(&mut **tx).await?;
    }
    Ok(())
}
