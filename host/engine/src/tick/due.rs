//! Phase 2, due sends: claims due communications with a lease and
//! starts each through its stage's channel (the A/B alternative chosen
//! per contact), several in flight at once; how their sessions started is
//! written in one transaction. A session that ended at its send goes on
//! to this tick's AGGREGATION.

use std::collections::HashMap;

use futures::StreamExt;
use stratagem_domain::Stage;
use stratagem_store::{ClaimedCommunication, ContactAtRevision, EndedSession, SessionStart};

use super::Tick;
use crate::campaigns::TickCache;
use crate::channels::{self, ChannelError, Sent};
use crate::{failure, Engine, EngineError, IN_FLIGHT};

impl Engine {
    /// Sends what is due; returns the sessions that ended at their send,
    /// for this tick's AGGREGATION.
    pub(super) async fn due_sends(&self, tick: &mut Tick) -> Result<Vec<(EndedSession, Option<SessionStart>)>, EngineError> {
        let now = tick.now;
        let claimed =
            self.store.dispatch().claim_due_communications(now, self.config.default_window, now + self.config.lease, self.config.batch).await?;
        tick.report.dispatched = claimed.len();
        for communication in &claimed {
            self.load_campaign(&mut tick.cache, &communication.tenant_id, &communication.campaign_id).await?;
        }
        let wanted: Vec<(&str, &str)> = claimed.iter().map(|c| (c.tenant_id.as_str(), c.contact_id.as_str())).collect();
        tick.contacts = self.store.dispatch().contacts_at_revision(&wanted).await?;
        // Sends wait on providers, so several are in flight at once; how
        // their sessions started is written in one transaction.
        let sends: Vec<_> = claimed.iter().map(|communication| self.dispatch(&tick.cache, &tick.contacts, communication)).collect();
        let sent: Vec<Result<Dispatch, EngineError>> = futures::stream::iter(sends).buffer_unordered(IN_FLIGHT).collect().await;
        let (mut open, mut ended) = (Vec::new(), Vec::new());
        for dispatch in sent {
            match dispatch? {
                Dispatch::Started(start) if start.ended.is_some() => ended.push(start),
                Dispatch::Started(start) => open.push(start),
                Dispatch::Deferred => tick.report.deferred += 1,
                Dispatch::Elsewhere => {}
            }
        }
        self.store.dispatch().start_sessions(&open).await?;
        // The contacts read above serve this tick's AGGREGATION runs too:
        // what the sends changed that a strategy sees is their A/B labels.
        let by_id: HashMap<&str, &ClaimedCommunication> = claimed.iter().map(|c| (c.id.as_str(), c)).collect();
        for start in open.iter().chain(&ended) {
            let (Some(label), Some(claim)) = (&start.alternative, by_id.get(start.communication_id.as_str())) else { continue };
            let Some(at) = tick.contacts.get_mut(&claim.contact_id) else { continue };
            let sent = at.stored.contact.communications.iter_mut().find(|c| c.id.as_deref() == Some(claim.id.as_str()));
            sent.into_iter().for_each(|communication| communication.alternative = Some(label.clone()));
        }
        // A session that ended at its send is aggregated in this tick and
        // written once with its outcome: until then its claim holds it.
        let mut sessions: Vec<(EndedSession, Option<SessionStart>)> = Vec::with_capacity(ended.len());
        for start in ended {
            let Some(claim) = by_id.get(start.communication_id.as_str()) else { continue };
            let session = EndedSession {
                communication_id: claim.id.clone(),
                tenant_id: claim.tenant_id.clone(),
                campaign_id: claim.campaign_id.clone(),
                contact_id: claim.contact_id.clone(),
                session_results: start.ended.clone().unwrap_or_default(),
                in_doubt: None,
            };
            sessions.push((session, Some(start)));
        }
        Ok(sessions)
    }

    /// Starts one claimed communication through its stage's channel.
    async fn dispatch(
        &self,
        cache: &TickCache,
        contacts: &HashMap<String, ContactAtRevision>,
        claimed: &ClaimedCommunication,
    ) -> Result<Dispatch, EngineError> {
        // A campaign that cannot run keeps its claims until they expire;
        // they are retried once it runs again.
        let Some(setup) = cache.get(&claimed.campaign_id) else { return Ok(Dispatch::Elsewhere) };
        let Some(at) = contacts.get(&claimed.contact_id) else { return Ok(Dispatch::Elsewhere) };
        let contact = &at.stored.contact;
        let stages = &setup.stages;
        let stage_name = claimed.communication.stage_name.clone();
        let stage = stages.iter().find(|stage| stage.definition.name == stage_name);
        let stage = match stage.cloned() {
            Some(stage) => stage,
            None if self.config.simulate_every_channel => simulated_stage(&stage_name),
            None => {
                let outcome = failure(format!("the campaign has no stage named `{stage_name}`; add it in the Stages tab"));
                return Ok(Dispatch::Started(SessionStart {
                    communication_id: claimed.id.clone(),
                    tenant_id: claimed.tenant_id.clone(),
                    alternative: None,
                    channel: String::new(),
                    ended: Some(outcome),
                    record_send: false,
                    sent_at: self.clock.now(),
                }));
            }
        };
        let definition = &stage.definition;
        let (label, channel, agent_id, settings) = match definition.choose(&stage.id, &contact.object_id) {
            Some(alternative) => (alternative.label.as_str(), alternative.channel, alternative.agent_id.as_deref(), &alternative.settings),
            None => (stratagem_domain::stage::DEFAULT_LABEL, definition.channel, definition.agent_id.as_deref(), &definition.settings),
        };
        // What the strategy set for this one communication.
        let parameters = &claimed.communication.parameters;
        let settings = &settings.overridden_by(channel, parameters);
        // One instant for the rate-limit slot and the send's record.
        let now = self.clock.now();
        if let Some(limit) = self.rate_limits.of(channel) {
            let second = now.timestamp();
            if !self.store.dispatch().take_send_slot(&claimed.tenant_id, channel.as_str(), second, limit).await? {
                self.store.dispatch().unclaim(&claimed.id).await?;
                metrics::counter!("stratagem_sends_total", "channel" => channel.as_str(), "status" => "deferred").increment(1);
                return Ok(Dispatch::Deferred);
            }
        }
        let send = channels::Send {
            idempotency_key: &claimed.id,
            tenant_id: &claimed.tenant_id,
            contact_id: &claimed.contact_id,
            contact,
            earlier_sends: at.sent.iter().filter(|id| **id != claimed.id).count(),
            channel,
            label,
            campaign: &setup.campaign,
            agent_id,
            settings,
            parameters,
            now,
        };
        let sent = match self.channels.adapter(channel) {
            Ok(adapter) => match adapter.send(&send).await {
                Ok(sent) => sent,
                Err(ChannelError::Store(error)) => return Err(error.into()), // the lease expires; retried
                Err(error) => Sent::Ended(failure(error.to_string())),
            },
            Err(error) => Sent::Ended(failure(error.to_string())),
        };
        count_send(channel, &sent);
        let (ended, record_send) = match sent {
            Sent::Ended(outcome) => (Some(outcome), false),
            // A simulated send recorded before under this key keeps its outcome.
            Sent::Simulated(outcome) => (Some(claimed.recorded.clone().unwrap_or(outcome)), true),
            Sent::Open => (None, false),
            // Ended now, IN_DOUBT: the AGGREGATION phase takes it from the
            // database, with its status.
            Sent::InDoubt(detail) => {
                tracing::warn!(%detail, communication_id = %claimed.id, "send in doubt; it is not repeated");
                self.store.dispatch().end_in_doubt(&claimed.id, Some(label), channel.as_str(), &detail, self.clock.now()).await?;
                return Ok(Dispatch::Elsewhere);
            }
            Sent::RetryLater(error) => {
                let retry_at = now + self.config.retry_delay(claimed.attempts);
                self.store.dispatch().retry_send_later(&claimed.id, retry_at, &error).await?;
                return Ok(Dispatch::Elsewhere);
            }
            Sent::InFlight | Sent::Written => return Ok(Dispatch::Elsewhere),
        };
        Ok(Dispatch::Started(SessionStart {
            communication_id: claimed.id.clone(),
            tenant_id: claimed.tenant_id.clone(),
            alternative: Some(label.to_owned()),
            channel: channel.as_str().to_owned(),
            ended,
            record_send,
            sent_at: now,
        }))
    }
}

/// Counts a send by its channel and how it went: `sent` (it reached the
/// provider, or the simulator), `ended` (its channel ended it at once, as
/// NO_COMMUNICATION does), `failed`, `in_doubt` or `retry_later`.
fn count_send(channel: stratagem_domain::Channel, sent: &Sent) {
    let status = match sent {
        Sent::Ended(outcome) if stratagem_domain::is_failed_outcome(outcome) => "failed",
        Sent::Ended(_) => "ended",
        Sent::Simulated(_) | Sent::Open | Sent::Written => "sent",
        Sent::InDoubt(_) => "in_doubt",
        Sent::RetryLater(_) => "retry_later",
        // Another attempt is sending it: counted there.
        Sent::InFlight => return,
    };
    metrics::counter!("stratagem_sends_total", "channel" => channel.as_str(), "status" => status).increment(1);
}

/// What became of one claimed communication.
enum Dispatch {
    /// Its session started (and may have ended): written with the batch,
    /// with its AGGREGATION outcome if it ended.
    Started(SessionStart),
    /// Nothing for the batch to write: its channel wrote its start (a
    /// provider's conversation), or its campaign cannot run now or its
    /// contact is gone (the claim expires and it is retried).
    Elsewhere,
    /// Put back unsent: its channel's rate limit was reached.
    Deferred,
}

/// A stage a simulation makes up for a stage name no stage has.
fn simulated_stage(name: &str) -> Stage {
    Stage {
        id: format!("simulated:{name}"),
        campaign_id: String::new(),
        position: 0,
        definition: stratagem_domain::StageDefinition {
            name: name.to_owned(),
            description: String::new(),
            channel: stratagem_domain::Channel::Simulated,
            agent_id: None,
            settings: Default::default(),
            alternatives: Vec::new(),
        },
        created_at: chrono::DateTime::UNIX_EPOCH,
        updated_at: chrono::DateTime::UNIX_EPOCH,
    }
}
