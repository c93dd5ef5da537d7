//! The campaign engine: what makes a RUNNING campaign run. Each tick
//!
//! 1. marks communications whose window passed MISSED (never sent later),
//!    and those a dead node was sending on a channel without an
//!    idempotency key IN_DOUBT (never sent again);
//! 2. claims due communications with a lease and starts them through their
//!    stage's channel (the A/B alternative chosen per contact);
//! 3. answers contacts who wrote in open conversations and ends sessions
//!    gone quiet past the inactivity timeout ([`conversations`]);
//! 4. runs the AGGREGATION strategy on each ended session and applies what
//!    it returns atomically (optimistic on the contact's revision);
//! 5. finishes campaigns whose contacts all have a final result;
//! 6. works a batch of each Deep Analysis run it can claim ([`analysis`]).
//!
//! A running node ticks phases 1–5 and phase 6 in two loops, so an LLM
//! slow to answer Deep Analysis never holds up a send.
//!
//! All state is in the database, so any number of nodes may run ticks at
//! once; a node that dies loses nothing (its leases expire) and a retried
//! send reuses the communication id as idempotency key — or, where the
//! provider takes none (SMTP, SIP), is not made: the send was announced
//! before its network call and ends IN_DOUBT.

mod analysis;
pub mod channels;
pub mod conversations;
mod email;
pub mod simulator;
mod builds;
mod strategies;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use stratagem_domain::{Campaign, CampaignContext, CampaignStatus, Channel, Contact, Stage, StrategyType};
use stratagem_runtime::{Clock, Hook, InvokeOptions, Isolation, LoadError, Strategy};
use stratagem_store::{ClaimedCommunication, ContactAtRevision, EndedSession, SessionOutcome, SessionStart, Store, StoreError, StrategyState};

pub use channels::{ChannelAdapter, ChannelError, Channels, Personas, Sent};
/// Provider clients, the LLM client and the egress policy live in their
/// own crate, apart from the tick loop; re-exported for the engine's users.
pub use stratagem_outbound::{egress, llm, providers, OutboundConfig};
pub use builds::{BuildLeases, BuildSlots, MAX_BUILD_ATTEMPTS};
pub use strategies::{InstallError, StrategyService, DEFAULT_MAX_LOADED_BYTES};

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Communications and sessions handled per phase and tick.
    pub batch: i64,
    /// How long a claim is held before another node may retry it.
    pub lease: chrono::Duration,
    /// The window of a communication planned without an end date.
    pub default_window: chrono::Duration,
    pub tick_every: Duration,
    /// Every channel but NO_COMMUNICATION reaches the simulated population,
    /// and stages the campaign does not define are simulated too.
    pub simulate_every_channel: bool,
    /// A conversation whose contact has not written for this long ends,
    /// and its results are extracted from what was said.
    pub session_timeout: chrono::Duration,
    /// Tick loops this node runs at once. On PostgreSQL more than one keeps
    /// the database busy while a loop sends and runs strategies; claims
    /// keep the loops apart as they keep nodes apart. SQLite has one
    /// writer: one loop.
    pub loops: usize,
    /// Private endpoints and the public URL providers post webhooks to.
    pub outbound: OutboundConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            batch: 200,
            lease: chrono::Duration::seconds(60),
            default_window: chrono::Duration::hours(24),
            tick_every: Duration::from_secs(1),
            simulate_every_channel: false,
            session_timeout: chrono::Duration::hours(24),
            loops: 1,
            outbound: OutboundConfig::DEFAULT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    pub missed: u64,
    /// Claims of dead nodes whose send may have gone out, made IN_DOUBT.
    pub in_doubt: u64,
    /// Communications claimed for sending.
    pub dispatched: usize,
    /// Of those, the ones put back unsent: their channel's rate limit was
    /// reached.
    pub deferred: usize,
    pub answered: usize,
    pub timed_out: usize,
    pub aggregated: usize,
    pub finished: usize,
    /// Sessions whose Deep Analysis values were computed.
    pub analyzed: usize,
}

impl TickReport {
    pub fn is_idle(&self) -> bool {
        *self == TickReport::default()
    }

    /// Whether a full batch was sent or aggregated, so more work is likely
    /// waiting: the next tick starts at once instead of after `tick_every`.
    /// A batch put back by a rate limit waits, or the node would spin.
    fn filled(&self, batch: i64) -> bool {
        let full = |n: usize| n as i64 >= batch;
        (full(self.dispatched) && self.deferred == 0) || full(self.aggregated)
    }
}

pub struct Engine {
    store: Store,
    strategies: Arc<StrategyService>,
    channels: Channels,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    rate_limits: RateLimits,
    /// Providers and LLM endpoints, under the egress policy.
    http: reqwest::Client,
}

/// Most sends per second per tenant and channel, e.g.
/// `EMAIL_NOTIFICATION=10,SIMULATED=100`; channels not named are unlimited.
/// The budget is kept in the database, so it holds across nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimits(HashMap<Channel, u32>);

impl RateLimits {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut limits = HashMap::new();
        for part in text.split(',').map(str::trim).filter(|part| !part.is_empty()) {
            let (name, limit) = part.split_once('=').ok_or_else(|| format!("`{part}`: write CHANNEL=SENDS_PER_SECOND"))?;
            let channel = Channel::ALL
                .into_iter()
                .find(|channel| channel.as_str().eq_ignore_ascii_case(name.trim()))
                .ok_or_else(|| format!("`{name}` is not a channel; channels: {}", Channel::ALL.map(|c| c.as_str()).join(", ")))?;
            let limit: u32 = limit.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| format!("`{part}`: the limit must be a whole number above 0"))?;
            limits.insert(channel, limit);
        }
        Ok(RateLimits(limits))
    }

    fn of(&self, channel: Channel) -> Option<u32> {
        self.0.get(&channel).copied()
    }
}

/// Per-tick lookups, so a batch of one campaign reads its settings once.
#[derive(Default)]
struct TickCache {
    campaigns: HashMap<String, Option<CampaignSetup>>,
}

/// What the engine needs of a campaign to work on it.
struct CampaignSetup {
    campaign: Campaign,
    stages: Vec<Stage>,
    aggregation: Option<Arc<Strategy>>,
    contact_answer: Option<Arc<Strategy>>,
}

impl TickCache {
    /// A campaign loaded by [`Engine::load_campaign`] this tick; `None` if
    /// it is gone or cannot run.
    fn get(&self, campaign_id: &str) -> Option<&CampaignSetup> {
        self.campaigns.get(campaign_id).and_then(Option::as_ref)
    }
}

/// Processed contacts a campaign needs before most of them failing says
/// the strategy, not the contacts, is broken.
const FAILURE_QUORUM: i64 = 10;

/// Sends and strategy runs in flight per node.
const IN_FLIGHT: usize = 16;

impl Engine {
    pub fn new(store: Store, strategies: Arc<StrategyService>, clock: Arc<dyn Clock>, config: EngineConfig) -> Self {
        let channels = Channels::new(store.clone(), Personas::default(), config.simulate_every_channel);
        let http = config.outbound.egress().client(Duration::from_secs(30));
        Self { store, strategies, channels, clock, config, rate_limits: RateLimits::default(), http }
    }

    pub fn with_rate_limits(mut self, limits: RateLimits) -> Self {
        self.rate_limits = limits;
        self
    }

    /// How the simulated population answers.
    pub fn with_personas(mut self, personas: Personas) -> Self {
        self.channels = Channels::new(self.store.clone(), personas, self.config.simulate_every_channel);
        self
    }

    /// Ticks until the process ends.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        let analyst = self.clone();
        tokio::spawn(async move {
            loop {
                match analyst.analyze().await {
                    Ok(0) => {}
                    Ok(analyzed) => tracing::debug!(analyzed, "deep analysis batch"),
                    Err(error) => tracing::error!(%error, "deep analysis batch failed"),
                }
                tokio::time::sleep(analyst.config.tick_every).await;
            }
        });
        // Aborting the returned task drops the set, which aborts the loops.
        tokio::spawn(async move {
            let mut loops = tokio::task::JoinSet::new();
            for _ in 0..self.config.loops.max(1) {
                loops.spawn(self.clone().tick_loop());
            }
            while loops.join_next().await.is_some() {}
        })
    }

    async fn tick_loop(self: Arc<Self>) {
        loop {
            match self.run_campaigns().await {
                Ok(report) if report.filled(self.config.batch) => {
                    tracing::debug!(?report, "engine tick");
                    continue;
                }
                Ok(report) if !report.is_idle() => tracing::debug!(?report, "engine tick"),
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "engine tick failed"),
            }
            tokio::time::sleep(self.config.tick_every).await;
        }
    }

    /// Every phase once, in order (tests and the simulator).
    pub async fn tick(&self) -> Result<TickReport, EngineError> {
        let mut report = self.run_campaigns().await?;
        report.analyzed = self.analyze().await?;
        Ok(report)
    }

    /// Phases 1–5: what moves campaigns forward.
    async fn run_campaigns(&self) -> Result<TickReport, EngineError> {
        let mut report = TickReport::default();
        let now = self.clock.now();
        report.missed = self.store.mark_missed(now, self.config.default_window).await?;
        // A send announced a lease ago whose claim expired with no outcome:
        // its node died between the network call and the record.
        report.in_doubt = self.store.mark_in_doubt(now, now - self.config.lease).await?;
        if !self.rate_limits.0.is_empty() {
            self.store.prune_send_windows(now.timestamp() - 60).await?;
        }
        let mut cache = TickCache::default();
        let claimed =
            self.store.claim_due_communications(now, self.config.default_window, now + self.config.lease, self.config.batch).await?;
        report.dispatched = claimed.len();
        for communication in &claimed {
            self.load_campaign(&mut cache, &communication.tenant_id, &communication.campaign_id).await?;
        }
        let wanted: Vec<(&str, &str)> = claimed.iter().map(|c| (c.tenant_id.as_str(), c.contact_id.as_str())).collect();
        let mut contacts = self.store.contacts_at_revision(&wanted).await?;
        // Sends wait on providers, so several are in flight at once; how
        // their sessions started is written in one transaction.
        let sends: Vec<_> = claimed.iter().map(|communication| self.dispatch(&cache, &contacts, communication)).collect();
        let sent: Vec<Result<Dispatch, EngineError>> = futures::stream::iter(sends).buffer_unordered(IN_FLIGHT).collect().await;
        let (mut open, mut ended) = (Vec::new(), Vec::new());
        for dispatch in sent {
            match dispatch? {
                Dispatch::Started(start) if start.ended.is_some() => ended.push(start),
                Dispatch::Started(start) => open.push(start),
                Dispatch::Deferred => report.deferred += 1,
                Dispatch::Elsewhere => {}
            }
        }
        self.store.start_sessions(&open).await?;
        // The contacts read above serve this tick's AGGREGATION runs too:
        // what the sends changed that a strategy sees is their A/B labels.
        let by_id: HashMap<&str, &ClaimedCommunication> = claimed.iter().map(|c| (c.id.as_str(), c)).collect();
        for start in open.iter().chain(&ended) {
            let (Some(label), Some(claim)) = (&start.alternative, by_id.get(start.communication_id.as_str())) else { continue };
            let Some(at) = contacts.get_mut(&claim.contact_id) else { continue };
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

        let now = self.clock.now();
        let lease_until = now + self.config.lease;
        let awaiting = self.store.claim_awaiting_answers(now, lease_until, self.config.batch).await?;
        let inactive = self.store.claim_inactive_sessions(now, now - self.config.session_timeout, lease_until, self.config.batch).await?;
        for session in awaiting.iter().chain(&inactive) {
            self.load_campaign(&mut cache, &session.tenant_id, &session.campaign_id).await?;
        }
        {
            let cache = &cache;
            let answered: Vec<Result<bool, EngineError>> = futures::stream::iter(awaiting)
                .map(|session| async move { self.answer(cache, &session).await })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
            for outcome in answered {
                report.answered += usize::from(outcome?);
            }
            let ended: Vec<Result<bool, EngineError>> = futures::stream::iter(inactive)
                .map(|session| async move { self.end_inactive(cache, &session).await })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
            for outcome in ended {
                report.timed_out += usize::from(outcome?);
            }
        }

        // Other ended sessions (operators', conversations', other nodes'
        // expired leases) are claimed, and their contacts read.
        let more = self.config.batch - sessions.len() as i64;
        if more > 0 {
            let others = self.store.claim_ended_sessions(self.clock.now(), self.clock.now() + self.config.lease, more).await?;
            let wanted: Vec<(&str, &str)> = others
                .iter()
                .filter(|s| !contacts.contains_key(&s.contact_id))
                .map(|s| (s.tenant_id.as_str(), s.contact_id.as_str()))
                .collect();
            let read = self.store.contacts_at_revision(&wanted).await?;
            contacts.extend(read);
            sessions.extend(others.into_iter().map(|session| (session, None)));
        }
        for (session, _) in &sessions {
            self.load_campaign(&mut cache, &session.tenant_id, &session.campaign_id).await?;
        }
        let runs: Vec<_> = sessions.into_iter().map(|(session, start)| self.aggregate(&cache, &contacts, session, start)).collect();
        let computed: Vec<Result<Option<(SessionOutcome, String)>, EngineError>> = futures::stream::iter(runs)
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let (outcomes, campaigns): (Vec<SessionOutcome>, Vec<String>) =
            computed.into_iter().filter_map(Result::transpose).collect::<Result<Vec<_>, _>>()?.into_iter().unzip();
        // Computed apart, applied together: one commit for the batch. One
        // not applied (its contact moved on while the strategy ran) is
        // released by the store and runs again.
        let applied = self.store.apply_session_outcomes(&outcomes, self.clock.now()).await?;
        let mut failing = std::collections::BTreeSet::new();
        for ((outcome, campaign_id), applied) in outcomes.iter().zip(&campaigns).zip(applied) {
            if !applied {
                continue;
            }
            report.aggregated += 1;
            if outcome.last_error.is_some() {
                failing.insert((outcome.tenant_id.clone(), campaign_id.clone()));
            }
        }
        for (tenant_id, campaign_id) in failing {
            self.stop_if_failing_most(&tenant_id, &campaign_id).await?;
        }
        report.finished = self.store.finish_done_campaigns(self.clock.now()).await?.len();
        Ok(report)
    }

    /// Loads a campaign's stages and AGGREGATION strategy into the tick's
    /// cache, once per tick.
    async fn load_campaign(&self, cache: &mut TickCache, tenant_id: &str, campaign_id: &str) -> Result<(), EngineError> {
        if !cache.campaigns.contains_key(campaign_id) {
            let setup = self.campaign_setup(tenant_id, campaign_id).await?;
            cache.campaigns.insert(campaign_id.to_owned(), setup);
        }
        Ok(())
    }

    /// A campaign with its stages and strategies; `None` when it is gone or
    /// cannot run. A strategy that does not fit the contract stops the
    /// campaign: ERROR with the reason, and none of its work is done.
    async fn campaign_setup(&self, tenant_id: &str, campaign_id: &str) -> Result<Option<CampaignSetup>, EngineError> {
        let campaign = match self.store.campaign(tenant_id, campaign_id).await {
            Ok(campaign) => campaign,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(other) => return Err(other.into()),
        };
        let stages = self.store.list_stages(tenant_id, campaign_id).await?;
        let Some(aggregation) = self.strategy(tenant_id, campaign_id, StrategyType::Aggregation).await? else { return Ok(None) };
        let Some(contact_answer) = self.strategy(tenant_id, campaign_id, StrategyType::ContactAnswer).await? else { return Ok(None) };
        Ok(Some(CampaignSetup { campaign, stages, aggregation, contact_answer }))
    }

    /// The campaign's active strategy of `kind`: `Some(None)` when it has
    /// none, `None` when it has one that cannot run now — still building
    /// (the campaign waits: running without it would decide its sessions
    /// as if it had none), or failed to build (the campaign stops, ERROR).
    /// Its component (megabytes) is read only when this node has not
    /// loaded it yet.
    async fn strategy(&self, tenant_id: &str, campaign_id: &str, kind: StrategyType) -> Result<Option<Option<Arc<Strategy>>>, EngineError> {
        let hash = match self.store.strategy_state(tenant_id, campaign_id, kind).await? {
            None => return Ok(Some(None)),
            Some(StrategyState::Ready(hash)) => hash,
            Some(StrategyState::Building) => return Ok(None),
            Some(StrategyState::Failed(error)) => {
                let reason = format!(
                    "the {} strategy failed to build: {}; upload a fixed version and configure the campaign again",
                    kind.as_str(),
                    build_error(error.as_ref())
                );
                self.stop_campaign(tenant_id, campaign_id, &reason).await?;
                return Ok(None);
            }
        };
        if let Some(strategy) = self.strategies.cached(&hash) {
            return Ok(Some(Some(strategy)));
        }
        let Some((hash, component)) = self.store.active_component(tenant_id, campaign_id, kind).await? else {
            return Ok(Some(None));
        };
        let service = self.strategies.clone();
        match tokio::task::spawn_blocking(move || service.load(&hash, &component)).await {
            Ok(Ok(strategy)) => Ok(Some(Some(strategy))),
            Ok(Err(error @ (LoadError::NotAComponent(_) | LoadError::ContractMismatch(_)))) => {
                let reason = format!(
                    "the {} strategy cannot run: {error}; upload a fixed version and configure the campaign again",
                    kind.as_str()
                );
                self.stop_campaign(tenant_id, campaign_id, &reason).await?;
                Ok(None)
            }
            Ok(Err(error)) => {
                // This node's artifact cache, not the campaign: try again next tick.
                tracing::error!(%error, campaign_id, kind = kind.as_str(), "loading a strategy failed on this node");
                Ok(None)
            }
            Err(panic) => {
                tracing::error!(%panic, campaign_id, kind = kind.as_str(), "loading a strategy panicked");
                Ok(None)
            }
        }
    }

    /// The campaign goes to ERROR with `reason` (unless it left RUNNING
    /// meanwhile).
    async fn stop_campaign(&self, tenant_id: &str, campaign_id: &str, reason: &str) -> Result<(), EngineError> {
        match self.store.set_campaign_status(tenant_id, campaign_id, CampaignStatus::Error, Some(reason)).await {
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(other) => Err(other.into()),
        }
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
        // One instant for the rate-limit slot and the send's record.
        let now = self.clock.now();
        if let Some(limit) = self.rate_limits.of(channel) {
            let second = now.timestamp();
            if !self.store.take_send_slot(&claimed.tenant_id, channel.as_str(), second, limit).await? {
                self.store.unclaim(&claimed.id).await?;
                return Ok(Dispatch::Deferred);
            }
        }
        if self.uses_provider(channel) {
            self.start_on_provider(setup, &claimed.id, &claimed.tenant_id, contact, label, channel, agent_id, settings).await?;
            return Ok(Dispatch::Elsewhere);
        }
        let send = channels::Send {
            idempotency_key: &claimed.id,
            tenant_id: &claimed.tenant_id,
            contact_id: &claimed.contact_id,
            contact,
            earlier_sends: at.sent.iter().filter(|id| **id != claimed.id).count(),
            channel,
            agent_id,
            settings,
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
        let (ended, record_send) = match sent {
            Sent::Ended(outcome) => (Some(outcome), false),
            // A simulated send recorded before under this key keeps its outcome.
            Sent::Simulated(outcome) => (Some(claimed.recorded.clone().unwrap_or(outcome)), true),
            Sent::Open => (None, false),
            // Ended now, IN_DOUBT: the AGGREGATION phase takes it from the
            // database, with its status.
            Sent::InDoubt(detail) => {
                tracing::warn!(%detail, communication_id = %claimed.id, "send in doubt; it is not repeated");
                self.store.end_in_doubt(&claimed.id, Some(label), channel.as_str(), &detail, self.clock.now()).await?;
                return Ok(Dispatch::Elsewhere);
            }
            Sent::InFlight => return Ok(Dispatch::Elsewhere),
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

    /// A campaign whose strategy fails for most of its processed contacts
    /// has a systemic problem: it goes to ERROR with the count (each
    /// contact keeps its own traceback), instead of failing its way through
    /// every contact.
    async fn stop_if_failing_most(&self, tenant_id: &str, campaign_id: &str) -> Result<(), EngineError> {
        let (processed, failing) = self.store.strategy_failures(tenant_id, campaign_id).await?;
        if processed < FAILURE_QUORUM || failing * 2 <= processed {
            return Ok(());
        }
        let reason = format!(
            "the campaign's strategy failed for {failing} of its {processed} processed contacts; each contact's last_error has the \
             traceback — fix the strategy, upload the new version and configure the campaign again"
        );
        match self.store.set_campaign_status(tenant_id, campaign_id, CampaignStatus::Error, Some(&reason)).await {
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
        let mut input = before.clone();
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
        let (mut contact, last_error) = match &aggregation {
            None => (input, None),
            Some(strategy) => {
                let options = InvokeOptions {
                    tenant: session.tenant_id.clone(),
                    campaign: CampaignContext { id: campaign.id.clone(), name: campaign.name.clone(), result_fields: campaign.result_fields.clone() },
                    isolation: Isolation::ReuseInstance,
                    clock: self.clock.clone(),
                    ..InvokeOptions::default()
                };
                let hook = Hook::Aggregation { contact: input.clone(), session_results: Some(session.session_results.clone()) };
                match strategy.clone().invoke_on_worker(hook, options).await.result {
                    Ok(Some(mut returned)) => {
                        returned.object_id = before.object_id.clone();
                        (returned, None)
                    }
                    Ok(None) => (input, None),
                    Err(error) => {
                        let detail = json!({
                            "hook": "AGGREGATION", "error": error, "message": error.to_string(),
                            "input": {"communication_id": session.communication_id, "session_results": session.session_results},
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
        };
        Ok(Some((outcome, session.campaign_id)))
    }
}

/// What became of one claimed communication.
enum Dispatch {
    /// Its session started (and may have ended): written with the batch,
    /// with its AGGREGATION outcome if it ended.
    Started(SessionStart),
    /// Nothing for the batch to write: a provider conversation wrote its
    /// start, or its campaign cannot run now or its contact is gone (the
    /// claim expires and it is retried).
    Elsewhere,
    /// Put back unsent: its channel's rate limit was reached.
    Deferred,
}

/// A stored build error (see the API's strategies) as one line of a
/// reason: where in the source, when known, and what.
fn build_error(error: Option<&serde_json::Value>) -> String {
    let Some(error) = error else { return "no error was recorded".into() };
    let text = |key: &str| error.get(key).and_then(|value| value.as_str().map(str::to_owned).or_else(|| value.as_u64().map(|n| n.to_string())));
    let what = match (text("type"), text("message")) {
        (Some(kind), Some(message)) => format!("{kind}: {message}"),
        _ => text("detail").unwrap_or_else(|| error.to_string()),
    };
    match (text("file"), text("line"), text("column")) {
        (Some(file), Some(line), Some(column)) => format!("{file}, line {line}, column {column}: {what}"),
        (Some(file), Some(line), None) => format!("{file}, line {line}: {what}"),
        _ => what,
    }
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

/// Runs DATA_LOAD for an imported contact. On failure the contact is kept
/// as it was (or as imported, if new) and the error is returned beside it,
/// so nothing the failed strategy produced is written.
pub async fn run_data_load(
    strategy: &Arc<Strategy>,
    options: &InvokeOptions,
    imported: Contact,
    existing: Option<Contact>,
) -> (Contact, Result<(), stratagem_runtime::InvokeError>) {
    let hook = Hook::DataLoad { contact: imported.clone(), existing: existing.clone() };
    match strategy.clone().invoke_on_worker(hook, options.clone()).await.result {
        Ok(Some(mut contact)) => {
            // The strategy may not move a contact to another subject.
            contact.object_id = imported.object_id;
            contact.settle_result(existing.as_ref(), options.clock.now());
            (contact, Ok(()))
        }
        Ok(None) => (existing.unwrap_or(imported), Ok(())),
        Err(error) => (existing.unwrap_or(imported), Err(error)),
    }
}

/// The session results of a communication the platform could not start.
fn failure(detail: String) -> stratagem_domain::JsonMap {
    let mut outcome = stratagem_domain::JsonMap::new();
    outcome.insert("OutcomeStatus".into(), "FAILED".into());
    outcome.insert("FailureDetail".into(), detail.into());
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_rate_limits_name_channels_in_any_case() {
        let limits = RateLimits::parse("email_notification=10, SIMULATED=2").expect("parses");
        assert_eq!((limits.of(Channel::EmailNotification), limits.of(Channel::Simulated), limits.of(Channel::Sip)), (Some(10), Some(2), None));
        assert_eq!(RateLimits::parse("").expect("empty"), RateLimits::default());
    }

    #[test]
    fn errors_when_rate_limits_are_malformed() {
        assert_eq!(RateLimits::parse("SIMULATED:2").expect_err("no ="), "`SIMULATED:2`: write CHANNEL=SENDS_PER_SECOND");
        assert_eq!(RateLimits::parse("SIMULATED=0").expect_err("zero"), "`SIMULATED=0`: the limit must be a whole number above 0");
        assert!(RateLimits::parse("FAX=1").expect_err("unknown").starts_with("`FAX` is not a channel; channels: EMAIL_NOTIFICATION,"));
    }
}
