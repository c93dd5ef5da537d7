//! Sends under their idempotency key (`channel_sends`): recorded,
//! announced before a call to a provider that takes no key, and marked
//! IN_DOUBT when a node died between the call and the record.

use chrono::{DateTime, Utc};
use stratagem_domain::{CommunicationStatus, JsonMap};

use super::sessions::{session_results, SessionStart};
use crate::contacts::{placeholders, COMMUNICATION_CHUNK, ID_CHUNK};
use crate::{from_json, get, micros, to_json, Result, StoreError};
use super::Dispatch;

/// Where a send under an idempotency key stands when an attempt asks to
/// make it ([`Dispatch::begin_send`]).
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

impl Dispatch<'_> {
    /// Records a send under its idempotency key — the outcome of one
    /// announced by [`Dispatch::begin_send`] fills its row — and returns the
    /// outcome recorded first: a retried send gets the original outcome
    /// back.
    pub async fn record_send(
        self,
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
        .execute(&self.store.pool)
        .await?;
        self.recorded_send(tenant_id, communication_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("send {communication_id} was recorded for another tenant")))
    }

    /// The outcome recorded under an idempotency key, if a send was.
    pub async fn recorded_send(self, tenant_id: &str, communication_id: &str) -> Result<Option<JsonMap>> {
        let row = sqlx::query("SELECT outcome FROM channel_sends WHERE communication_id = $1 AND tenant_id = $2")
            .bind(communication_id)
            .bind(tenant_id)
            .fetch_optional(&self.store.pool)
            .await?;
        row.and_then(|row| get::<Option<String>>(&row, "outcome").transpose()).map(|text| from_json(&text?)).transpose()
    }

    /// Announces a send to a provider that takes no idempotency key, before
    /// its network call: a row without an outcome, committed at once. Only
    /// the attempt it grants sends; it then records the outcome
    /// ([`Dispatch::record_send`]) — or gives the send up
    /// ([`Dispatch::abandon_send`]) if the provider surely did not get it. A
    /// row left without an outcome makes the claim IN_DOUBT.
    pub async fn begin_send(self, tenant_id: &str, communication_id: &str, channel: &str, at: DateTime<Utc>) -> Result<SendClaim> {
        let inserted = sqlx::query(
            "INSERT INTO channel_sends (communication_id, tenant_id, channel, outcome, created_at) VALUES ($1, $2, $3, NULL, $4) \
             ON CONFLICT (communication_id) DO NOTHING",
        )
        .bind(communication_id)
        .bind(tenant_id)
        .bind(channel)
        .bind(micros(at))
        .execute(&self.store.pool)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(SendClaim::Granted);
        }
        Ok(match self.recorded_send(tenant_id, communication_id).await? {
            Some(outcome) => SendClaim::Recorded(outcome),
            None => SendClaim::Pending,
        })
    }

    /// Withdraws a send announced by [`Dispatch::begin_send`] that surely
    /// reached no one (the server could not be reached, or refused it), so
    /// a later attempt may make it.
    pub async fn abandon_send(self, tenant_id: &str, communication_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM channel_sends WHERE communication_id = $1 AND tenant_id = $2 AND outcome IS NULL")
            .bind(communication_id)
            .bind(tenant_id)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// Ends the session of a claimed communication whose send may have
    /// reached the contact and whose outcome is unknown: IN_DOUBT, with
    /// `session_results` `{"OutcomeStatus": "IN_DOUBT", "InDoubtDetail":
    /// detail}`, and the announced send's row gets them as its outcome.
    /// Returns whether the claim was still in progress.
    pub async fn end_in_doubt(
        self,
        communication_id: &str,
        alternative: Option<&str>,
        channel: &str,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let results = to_json(&in_doubt_results(detail))?;
        let mut tx = self.store.begin_write().await?;
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
    pub async fn mark_in_doubt(self, now: DateTime<Utc>, announced_before: DateTime<Utc>) -> Result<u64> {
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
        .fetch_all(&self.store.pool)
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
            query.execute(&self.store.pool).await?;
        }
        Ok(marked.len() as u64)
    }

    /// How many sends are recorded for a campaign's communications (the
    /// exactly-once check of tests and benchmarks).
    pub async fn count_sends(self, tenant_id: &str, campaign_id: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS sends FROM channel_sends s JOIN communications c ON c.id = s.communication_id \
             WHERE s.tenant_id = $1 AND c.campaign_id = $2",
        )
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_one(&self.store.pool)
        .await?;
        get(&row, "sends")
    }
}

/// Sends that reached no one outside (the simulated population), recorded
/// in the transaction that ends their sessions; a send recorded earlier
/// under the same key keeps its record.
pub(super) async fn record_sends(tx: &mut sqlx::Transaction<'_, sqlx::Any>, sent: &[&SessionStart]) -> Result<()> {
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
