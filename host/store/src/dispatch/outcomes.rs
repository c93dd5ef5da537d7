//! Applying what strategies returned: a batch of AGGREGATION outcomes, or
//! a CONTACT_ANSWER during a conversation.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use stratagem_domain::{Communication, Contact};

use super::contact_write::{write_contacts, ContactWrite, Session};
use super::revisions::ContactAtRevision;
use super::sends::record_sends;
use super::sessions::{end_sessions, SessionEnd, SessionStart};
use super::{is_transient_conflict, CONFLICT_RETRIES};
use crate::contacts::{placeholders, ID_CHUNK};
use crate::{get, Result};
use super::Dispatch;

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
    /// The AGGREGATION invocation that produced it, kept with it.
    pub invocation: Option<crate::NewInvocation>,
}

impl Dispatch<'_> {
    /// Applies a batch of AGGREGATION outcomes in one transaction (one
    /// commit instead of one per session). For each: the contact if still
    /// at the revision the strategy saw, its communications (existing ones
    /// updated in place, new ones planned, planned ones the strategy dropped
    /// cancelled), and the session marked aggregated, with its start when
    /// that is written here too. The result says which were applied; one
    /// that was not is left for a later run: its session recorded as ended
    /// and released (the contact moved on: the strategy runs again), or
    /// untouched when a session started here is no longer this claim's.
    pub async fn apply_session_outcomes(self, outcomes: &[SessionOutcome], now: DateTime<Utc>) -> Result<Vec<bool>> {
        let mut attempt = 0;
        loop {
            match self.try_apply_session_outcomes(outcomes, now).await {
                Err(error) if is_transient_conflict(&error) && attempt < CONFLICT_RETRIES => attempt += 1,
                outcome => return outcome,
            }
        }
    }

    async fn try_apply_session_outcomes(self, outcomes: &[SessionOutcome], now: DateTime<Utc>) -> Result<Vec<bool>> {
        let mut tx = self.store.begin_write().await?;
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
        let written = write_contacts(&mut tx, self.store.lock_rows(), &writes, Some(now), now).await?;
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
        // Every invocation ran, applied or not: a contact that moved on
        // meanwhile gets its strategy run again, and both runs are history.
        let invocations: Vec<crate::NewInvocation> = outcomes.iter().filter_map(|o| o.invocation.clone()).collect();
        crate::invocations::record_invocations(self.store, &mut tx, &invocations).await?;
        tx.commit().await?;
        let applied: HashSet<&str> =
            owned.iter().zip(&written.applied).filter(|(_, applied)| **applied).map(|(o, _)| o.communication_id.as_str()).collect();
        Ok(outcomes.iter().map(|outcome| applied.contains(outcome.communication_id.as_str())).collect())
    }

    /// Of sessions started by this batch's claims, the ones still claimed
    /// (in progress, not ended), locked until the transaction ends on
    /// PostgreSQL: a claim whose lease expired may be another node's now.
    async fn still_claimed(self, tx: &mut sqlx::Transaction<'_, sqlx::Any>, ids: &[&str]) -> Result<HashSet<String>> {
        let lock = self.store.lock_rows();
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
        self,
        tenant_id: &str,
        seen: &ContactAtRevision,
        contact: &Contact,
        last_error: Option<&serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.store.begin_write().await?;
        let write = ContactWrite {
            tenant_id,
            contact_id: &seen.stored.id,
            revision: seen.revision,
            contact,
            seen_communications: &seen.stored.contact.communications,
            last_error,
            session: None,
        };
        if write_contacts(&mut tx, self.store.lock_rows(), &[write], None, now).await?.applied != [true] {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }
}
