//! The campaign engine: what makes a RUNNING campaign run. Each tick
//! ([`tick`], one module per phase)
//!
//! 1. marks communications whose window passed MISSED (never sent later),
//!    and those a dead node was sending on a channel without an
//!    idempotency key IN_DOUBT (never sent again);
//! 2. claims due communications with a lease and starts them through their
//!    stage's channel ([`channels`]; the A/B alternative chosen per contact);
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

pub mod analysis;
mod builds;
mod campaigns;
pub mod channels;
pub mod conversations;
mod credentials;
pub mod invocations;
mod strategies;
mod tick;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use stratagem_domain::{Campaign, CampaignContext, Channel, Contact};
use stratagem_runtime::{Clock, Hook, HttpPolicy, InvokeOptions, Isolation, Strategy};
use stratagem_store::{Store, StoreError};
pub use tokio_util::sync::CancellationToken;

pub use channels::{ChannelAdapter, ChannelContext, ChannelError, Channels, Personas, Sent};
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
    /// How long after a provider could not take a send (5xx, 429,
    /// unreachable) it is tried again; each later attempt waits twice as
    /// long, up to 64 times this, while the communication's window is open.
    pub retry_after: chrono::Duration,
    /// How long strategy invocations (outcome, log, usage, kept input)
    /// are kept.
    pub invocation_retention: chrono::Duration,
    /// The node's default quotas: AGGREGATION of a tenant whose use today
    /// reached a daily quota waits (`tick/aggregation.rs`).
    pub quotas: stratagem_domain::quota::Quotas,
}

impl EngineConfig {
    /// The wait before the next attempt of a send that failed `attempts`
    /// times for now.
    pub fn retry_delay(&self, attempts: i64) -> chrono::Duration {
        self.retry_after * (1 << attempts.clamp(0, 6)) as i32
    }
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
            retry_after: chrono::Duration::seconds(30),
            invocation_retention: chrono::Duration::days(14),
            quotas: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A campaign's strategy could not be made ready on this node.
    #[error(transparent)]
    Load(#[from] stratagem_runtime::LoadError),
}

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    pub missed: u64,
    /// Claims of dead nodes whose send may have gone out, made IN_DOUBT.
    pub in_doubt: u64,
    /// Sends a provider could not take before their window closed, ended FAILED.
    pub failed: u64,
    /// Communications claimed for sending.
    pub dispatched: usize,
    /// Of those, the ones put back unsent: their channel's rate limit was
    /// reached.
    pub deferred: usize,
    pub answered: usize,
    pub timed_out: usize,
    pub aggregated: usize,
    /// Sessions that ended at their send whose AGGREGATION waits: their
    /// tenant reached a daily quota.
    pub waiting_for_quota: usize,
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

/// How often a node deletes invocations past their retention.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Sends and strategy runs in flight per node.
const IN_FLIGHT: usize = 16;

impl Engine {
    pub fn new(store: Store, strategies: Arc<StrategyService>, clock: Arc<dyn Clock>, config: EngineConfig) -> Self {
        let http = config.outbound.egress().client(Duration::from_secs(30));
        let context = ChannelContext { store: store.clone(), clock: clock.clone(), http: http.clone(), outbound: config.outbound.clone() };
        let channels = Channels::new(context, Personas::default(), config.simulate_every_channel);
        Self { store, strategies, channels, clock, config, rate_limits: RateLimits::default(), http }
    }

    pub fn with_rate_limits(mut self, limits: RateLimits) -> Self {
        self.rate_limits = limits;
        self
    }

    /// How the simulated population answers.
    pub fn with_personas(mut self, personas: Personas) -> Self {
        self.channels.set_personas(personas);
        self
    }

    /// Ticks until `shutdown` is cancelled; then each loop finishes the
    /// tick it is in — the sends in flight get their answers and are
    /// recorded — and the returned task ends. What no tick claimed stays
    /// for the next node; a claim cut short by the process's end is
    /// retried when its lease expires.
    pub fn spawn(self: Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let mut loops = tokio::task::JoinSet::new();
        let analyst = self.clone();
        let stop = shutdown.clone();
        loops.spawn(async move {
            let mut next_prune = tokio::time::Instant::now();
            while !stop.is_cancelled() {
                if tokio::time::Instant::now() >= next_prune {
                    next_prune += PRUNE_EVERY;
                    match analyst.prune_invocations().await {
                        Ok(0) => {}
                        Ok(deleted) => tracing::info!(deleted, "strategy invocations past their retention deleted"),
                        Err(error) => tracing::error!(%error, "deleting strategy invocations past their retention failed"),
                    }
                }
                match analyst.analyze().await {
                    Ok(0) => {}
                    Ok(analyzed) => tracing::debug!(analyzed, "deep analysis batch"),
                    Err(error) => tracing::error!(%error, "deep analysis batch failed"),
                }
                let _ = tokio::time::timeout(analyst.config.tick_every, stop.cancelled()).await;
            }
        });
        for _ in 0..self.config.loops.max(1) {
            loops.spawn(self.clone().tick_loop(shutdown.clone()));
        }
        // Aborting the returned task drops the set, which aborts the loops.
        tokio::spawn(async move { while loops.join_next().await.is_some() {} })
    }

    async fn tick_loop(self: Arc<Self>, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            match self.run_campaigns().await {
                Ok(report) if report.filled(self.config.batch) => {
                    tracing::debug!(?report, "engine tick");
                    continue;
                }
                Ok(report) if !report.is_idle() => tracing::debug!(?report, "engine tick"),
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "engine tick failed"),
            }
            let _ = tokio::time::timeout(self.config.tick_every, shutdown.cancelled()).await;
        }
    }

    /// Deletes the strategy invocations older than the retention period;
    /// how many.
    pub async fn prune_invocations(&self) -> Result<u64, EngineError> {
        let before = chrono::Utc::now() - self.config.invocation_retention;
        Ok(self.store.invocations().prune(before).await?)
    }

    /// Every phase once, in order (tests and the simulator).
    pub async fn tick(&self) -> Result<TickReport, EngineError> {
        let mut report = self.run_campaigns().await?;
        report.analyzed = self.analyze().await?;
        Ok(report)
    }
}

/// How the service invokes a strategy of `campaign` for `tenant`: the
/// campaign as the strategy sees it, its HTTP allowlist, the tenant's
/// integration credentials (`auth=`), and healthy instances reused within
/// the tenant.
pub fn invoke_options(store: &Store, tenant: &str, campaign: &Campaign, clock: Arc<dyn Clock>) -> InvokeOptions {
    InvokeOptions {
        tenant: tenant.to_owned(),
        campaign: CampaignContext { id: campaign.id.clone(), name: campaign.name.clone(), result_fields: campaign.result_fields.clone() },
        isolation: Isolation::ReuseInstance,
        http: HttpPolicy { allowed_hosts: campaign.http_allowlist.clone(), ..HttpPolicy::default() },
        credentials: Some(Arc::new(credentials::TenantCredentials { store: store.clone(), tenant: tenant.to_owned() })),
        clock,
        ..InvokeOptions::default()
    }
}

/// What DATA_LOAD made of an imported contact.
pub struct DataLoaded {
    /// The contact to store. On failure it is kept as it was (or as
    /// imported, if new): nothing the failed strategy produced is written.
    pub contact: Contact,
    pub error: Option<stratagem_runtime::InvokeError>,
    /// The invocation, to keep with the contact.
    pub invocation: stratagem_store::NewInvocation,
}

/// Runs DATA_LOAD for an imported contact; `import_job_id` names the
/// import whose row it is.
pub async fn run_data_load(
    strategy: &Arc<Strategy>,
    options: &InvokeOptions,
    imported: Contact,
    existing: Option<Contact>,
    import_job_id: Option<&str>,
) -> DataLoaded {
    let hook = Hook::DataLoad { contact: imported.clone(), existing: existing.clone() };
    let ran = strategy.clone().invoke_on_worker(hook.clone(), options.clone()).await;
    let invocation = invocations::record(strategy, &hook, options, &ran, import_job_id);
    let (contact, error) = match ran.result {
        Ok(Some(mut contact)) => {
            // The strategy may not move a contact to another subject.
            contact.object_id = imported.object_id;
            contact.settle_result(existing.as_ref(), options.clock.now());
            (contact, None)
        }
        Ok(None) => (existing.unwrap_or(imported), None),
        Err(error) => (existing.unwrap_or(imported), Some(error)),
    };
    DataLoaded { contact, error, invocation }
}

/// The session results of a communication the platform could not start.
fn failure(detail: String) -> stratagem_domain::JsonMap {
    stratagem_domain::failed_outcome(detail)
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
