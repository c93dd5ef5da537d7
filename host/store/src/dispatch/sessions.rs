//! Channel sessions: started (staying open), ended, ended with a batch of
//! outcomes, and read back with their transcripts.

use chrono::{DateTime, Utc};
use stratagem_domain::JsonMap;

use super::{column_params, is_transient_conflict, CONFLICT_RETRIES};
use crate::contacts::{placeholders, COMMUNICATION_CHUNK};
use crate::{from_json, get, micros, to_json, Result};
use super::Dispatch;

pub use stratagem_domain::contact::SessionRecord;

/// How a started communication left its channel session. One that stays
/// open is written by [`Dispatch::start_sessions`]; one that ended at its send
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

impl Dispatch<'_> {
    /// Records, in one transaction, the sessions of a batch that stay open
    /// (a Human task, a conversation): their A/B label and channel; the
    /// claim's lease ends, since the session's own clock runs now. Sessions
    /// that ended at their send are written with their outcome
    /// ([`Dispatch::apply_session_outcomes`]).
    pub async fn start_sessions(self, started: &[SessionStart]) -> Result<()> {
        debug_assert!(started.iter().all(|start| start.ended.is_none()), "ended sessions are written with their outcome");
        let mut attempt = 0;
        loop {
            match self.try_start_sessions(started).await {
                Err(error) if is_transient_conflict(&error) && attempt < CONFLICT_RETRIES => attempt += 1,
                outcome => return outcome,
            }
        }
    }

    async fn try_start_sessions(self, started: &[SessionStart]) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
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

    /// Writes sessions that ended at their send, their send recorded, as
    /// awaiting AGGREGATION without running it now (their tenant reached
    /// a daily quota): claimed again once the tenant may run strategies.
    pub async fn end_sessions_unaggregated(self, ended: &[SessionStart], now: DateTime<Utc>) -> Result<()> {
        if ended.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.begin_write().await?;
        let sent: Vec<&SessionStart> = ended.iter().filter(|start| start.record_send).collect();
        super::sends::record_sends(&mut tx, &sent).await?;
        let ends: Vec<SessionEnd<'_>> =
            ended.iter().map(|start| SessionEnd { communication_id: &start.communication_id, start: Some(start), aggregated: false }).collect();
        end_sessions(&mut tx, &ends, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The channel session of a claimed communication ended.
    pub async fn end_session(
        self,
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
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }
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

/// A session an outcome batch ends or gives back.
pub(super) struct SessionEnd<'a> {
    pub(super) communication_id: &'a str,
    /// How it started, when that is written here.
    pub(super) start: Option<&'a SessionStart>,
    /// Its outcome was applied: it is done. Otherwise it stays ended and
    /// awaiting AGGREGATION, released for the next claim.
    pub(super) aggregated: bool,
}

/// Ends sessions whose communication the contact write left alone, and
/// releases the ones whose outcome was not applied. Their start, if
/// written here, is written as [`Dispatch::start_sessions`] writes one, with
/// the session's end.
pub(super) async fn end_sessions(tx: &mut sqlx::Transaction<'_, sqlx::Any>, ends: &[SessionEnd<'_>], now: DateTime<Utc>) -> Result<()> {
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

/// The results a session that ended at its send is written with.
pub(super) fn session_results(start: Option<&SessionStart>) -> Result<Option<String>> {
    start.and_then(|start| start.ended.as_ref()).map(to_json).transpose()
}
