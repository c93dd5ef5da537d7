//! Phase 4, aggregation: the AGGREGATION strategy runs on each ended
//! session (those that ended at their send this tick first, then others
//! claimed to fill the batch), computed apart and applied together in one
//! transaction, optimistic on each contact's revision.

use std::collections::HashMap;

use futures::StreamExt;
use serde_json::json;
use stratagem_domain::{CampaignStatus, CommunicationState, CommunicationStatus};
use stratagem_runtime::Hook;
use stratagem_store::{ContactAtRevision, EndedSession, SessionOutcome, SessionStart, StoreError};

use super::Tick;
use crate::campaigns::{CampaignSetup, TickCache};
use crate::{Engine, EngineError, IN_FLIGHT};

/// Processed contacts a campaign needs before most of them failing says
/// the strategy, not the contacts, is broken.
const FAILURE_QUORUM: i64 = 10;

impl Engine {
    pub(super) async fn aggregation(&self, tick: &mut Tick, sessions: Vec<(EndedSession, Option<SessionStart>)>) -> Result<(), EngineError> {
        // Tenants whose use today reached a daily quota: their sessions
        // wait, ended and recorded, until the next UTC day or a raised
        // quota; nothing they planned is dropped.
        let waiting = self.store.tenants().past_daily_quotas(self.config.quotas).await?;
        let (mut sessions, deferred): (Vec<_>, Vec<_>) = sessions.into_iter().partition(|(session, _)| !waiting.contains(&session.tenant_id));
        let deferred: Vec<SessionStart> = deferred.into_iter().filter_map(|(_, start)| start).collect();
        tick.report.waiting_for_quota = deferred.len();
        self.store.dispatch().end_sessions_unaggregated(&deferred, self.clock.now()).await?;
        // Other ended sessions (operators', conversations', other nodes'
        // expired leases) are claimed, and their contacts read.
        let more = self.config.batch - sessions.len() as i64;
        if more > 0 {
            let others =
                self.store.dispatch().claim_ended_sessions(self.clock.now(), self.clock.now() + self.config.lease, more, &waiting).await?;
            let wanted: Vec<(&str, &str)> = others
                .iter()
                .filter(|s| !tick.contacts.contains_key(&s.contact_id))
                .map(|s| (s.tenant_id.as_str(), s.contact_id.as_str()))
                .collect();
            let read = self.store.dispatch().contacts_at_revision(&wanted).await?;
            tick.contacts.extend(read);
            sessions.extend(others.into_iter().map(|session| (session, None)));
        }
        for (session, _) in &sessions {
            self.load_campaign(&mut tick.cache, &session.tenant_id, &session.campaign_id).await?;
        }
        let runs: Vec<_> = sessions.into_iter().map(|(session, start)| self.aggregate(&tick.cache, &tick.contacts, session, start)).collect();
        let computed: Vec<Result<Option<(SessionOutcome, String)>, EngineError>> = futures::stream::iter(runs)
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let (outcomes, campaigns): (Vec<SessionOutcome>, Vec<String>) =
            computed.into_iter().filter_map(Result::transpose).collect::<Result<Vec<_>, _>>()?.into_iter().unzip();
        // Computed apart, applied together: one commit for the batch. One
        // not applied (its contact moved on while the strategy ran) is
        // released by the store and runs again.
        let applied = self.store.dispatch().apply_session_outcomes(&outcomes, self.clock.now()).await?;
        let mut failing = std::collections::BTreeSet::new();
        for ((outcome, campaign_id), applied) in outcomes.iter().zip(&campaigns).zip(applied) {
            if !applied {
                continue;
            }
            tick.report.aggregated += 1;
            if outcome.last_error.is_some() {
                failing.insert((outcome.tenant_id.clone(), campaign_id.clone()));
            }
        }
        for (tenant_id, campaign_id) in failing {
            self.stop_if_failing_most(&tenant_id, &campaign_id).await?;
        }
        Ok(())
    }

    /// A campaign whose strategy fails for most of its processed contacts
    /// has a systemic problem: it goes to ERROR with the count (each
    /// contact keeps its own traceback), instead of failing its way through
    /// every contact.
    async fn stop_if_failing_most(&self, tenant_id: &str, campaign_id: &str) -> Result<(), EngineError> {
        let (processed, failing) = self.store.dispatch().strategy_failures(tenant_id, campaign_id).await?;
        if processed < FAILURE_QUORUM || failing * 2 <= processed {
            return Ok(());
        }
        let reason = format!(
            "the campaign's strategy failed for {failing} of its {processed} processed contacts; each contact's last_error has the \
             traceback — fix the strategy, upload the new version and configure the campaign again"
        );
        match self.store.campaigns().set_campaign_status(tenant_id, campaign_id, CampaignStatus::Error, Some(&reason)).await {
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    /// Runs AGGREGATION on an ended session; `None` when its campaign
    /// cannot run now (the session waits).
    async fn aggregate(
        &self,
        cache: &TickCache,
        contacts: &HashMap<String, ContactAtRevision>,
        session: EndedSession,
        start: Option<SessionStart>,
    ) -> Result<Option<(SessionOutcome, String)>, EngineError> {
        let Some(CampaignSetup { campaign, aggregation, .. }) = cache.get(&session.campaign_id) else {
            return Ok(None);
        };
        let Some(at) = contacts.get(&session.contact_id) else { return Ok(None) };
        let mut before = at.stored.contact.clone();
        // An IN_DOUBT session's communication is IN_DOUBT, even in a
        // contact read before the platform marked it.
        if let Some(state) = &session.in_doubt {
            let ours = before.communications.iter_mut().find(|c| c.id.as_deref() == Some(session.communication_id.as_str()));
            ours.into_iter().for_each(|communication| communication.status = state.clone());
        }
        // A send that failed is FAILED, with why: the strategy sees it so
        // (and `OutcomeStatus: FAILED` with the `FailureDetail`), and may
        // plan another channel, but cannot call it completed.
        let failed = send_failure(&session.session_results, self.clock.now());
        let mark_failed = |contact: &mut stratagem_domain::Contact| {
            let Some(state) = &failed else { return };
            let ours = contact.communications.iter_mut().find(|c| c.id.as_deref() == Some(session.communication_id.as_str()));
            if let Some(communication) = ours.filter(|c| {
                matches!(c.status.status, CommunicationStatus::Planned | CommunicationStatus::InProgress | CommunicationStatus::Completed)
            }) {
                communication.status = state.clone();
            }
        };
        let mut input = before.clone();
        mark_failed(&mut input);
        for communication in &mut input.communications {
            communication.flagged = communication.id.as_deref() == Some(session.communication_id.as_str());
        }
        // Campaign results (Settings > Campaign Results) are the session's
        // values of their codes; the strategy sees them and may change them.
        for field in &campaign.result_fields {
            if let Some(value) = session.session_results.get(&field.code) {
                input.results.insert(field.code.clone(), value.clone());
            }
        }
        let now = self.clock.now();
        let mut invocation = None;
        let (mut contact, last_error) = match &aggregation {
            None => (input, None),
            Some(strategy) => {
                let options = crate::invoke_options(&self.store, &session.tenant_id, campaign, self.clock.clone());
                let hook = Hook::Aggregation { contact: input.clone(), session_results: Some(session.session_results.clone()) };
                let ran = strategy.clone().invoke_on_worker(hook.clone(), options.clone()).await;
                let kept = crate::invocations::record(strategy, &hook, &options, &ran, None);
                let invocation_id = kept.record.id.clone();
                invocation = Some(kept);
                match ran.result {
                    Ok(Some(mut returned)) => {
                        returned.object_id = before.object_id.clone();
                        (returned, None)
                    }
                    Ok(None) => (input, None),
                    Err(error) => {
                        let detail = json!({
                            "hook": "AGGREGATION", "error": error, "message": error.to_string(),
                            "input": {"communication_id": session.communication_id, "session_results": session.session_results},
                            "invocation_id": invocation_id,
                        });
                        (before.clone(), Some(detail))
                    }
                }
            }
        };
        // Whether that send reached the contact is a fact nobody knows, not
        // a strategy's decision: the communication stays IN_DOUBT.
        if let Some(state) = &session.in_doubt {
            let ours = contact.communications.iter_mut().find(|c| c.id.as_deref() == Some(session.communication_id.as_str()));
            ours.into_iter().for_each(|communication| communication.status = state.clone());
        }
        mark_failed(&mut contact);
        contact.settle_result(Some(&before), now);
        let outcome = SessionOutcome {
            tenant_id: session.tenant_id,
            contact_id: session.contact_id,
            revision: at.revision,
            contact,
            seen_communications: before.communications,
            communication_id: session.communication_id,
            last_error,
            start,
            invocation,
        };
        Ok(Some((outcome, session.campaign_id)))
    }
}

/// The state of a communication whose send failed, from its session's
/// results: `OutcomeStatus: FAILED`, with the `FailureDetail` the platform
/// wrote.
fn send_failure(results: &stratagem_domain::JsonMap, now: chrono::DateTime<chrono::Utc>) -> Option<CommunicationState> {
    if !stratagem_domain::is_failed_outcome(results) {
        return None;
    }
    let detail = results.get("FailureDetail").and_then(serde_json::Value::as_str).unwrap_or("the send failed");
    Some(CommunicationState { status: CommunicationStatus::Failed, detail: Some(detail.to_owned()), updated_at: Some(now) })
}
