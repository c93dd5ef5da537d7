//! A campaign's strategies as users change them: an upload or an edit
//! stores a new version, queued for the build queue
//! (`stratagem_engine::builds`) — or failed at once when the syntax check
//! finds an error — and cancels the build of the version it replaces; a
//! delete also drops the strategy's compiled code from this node (other
//! nodes drop it at their next sweep).
//!
//! The build queue itself, its leases and their recovery stay in the
//! engine: the engine's `StrategyService` loads what the queue builds, and
//! the engine sits below this crate.

use std::sync::Arc;

use stratagem_domain::quota::Quotas;
use stratagem_domain::StrategyType;
use stratagem_engine::StrategyService;
use stratagem_runtime::StrategySource;
use stratagem_store::{Store, StoreError, StrategyView, VersionInput, VersionStart};

/// The longest strategy name, in characters as sent.
pub const NAME_MAX_CHARS: usize = 200;

/// What a new version is built from.
pub enum VersionSource<'a> {
    /// Python files, built with componentize-py.
    Python(&'a StrategySource),
    /// A component the user built against `wit/`; checked against the
    /// contract and compiled.
    Component(&'a [u8]),
}

impl VersionSource<'_> {
    /// What it stores, for the storage quota.
    fn bytes(&self) -> u64 {
        match self {
            VersionSource::Python(source) => source.files.values().map(|text| text.len() as u64).sum(),
            VersionSource::Component(bytes) => bytes.len() as u64,
        }
    }

    /// How its version starts: failed at once when the syntax check finds
    /// an error in Python sources, otherwise queued for its build.
    async fn start(&self, strategies: &StrategyService) -> VersionStart {
        let early = match self {
            VersionSource::Python(source) => strategies.early_syntax_error(source).await,
            VersionSource::Component(_) => None,
        };
        early.map_or(VersionStart::Queued, VersionStart::Failed)
    }

    fn input(&self) -> VersionInput<'_> {
        match self {
            VersionSource::Python(source) => VersionInput::Source { entry: &source.entry, sources: &source.files },
            VersionSource::Component(bytes) => VersionInput::Component(bytes),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StrategyError {
    #[error("name must have 1 to {NAME_MAX_CHARS} characters, not only white space")]
    InvalidName,
    #[error("the strategy is {}; a strategy's type cannot change: upload a new strategy instead", .current.as_str())]
    TypeChanged { current: StrategyType },
    /// This node cannot build Python: its toolchain is missing or broken.
    #[error(
        "this server cannot build Python strategies now: {0}. The operator can fix that; meanwhile a component built \
         with `stratagem strategy build` can be uploaded instead"
    )]
    NoToolchain(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct StrategyCatalog {
    store: Store,
    strategies: Arc<StrategyService>,
    /// Why this node cannot build Python, when it cannot.
    toolchain_problem: Option<Arc<str>>,
    /// The node's default quotas: a version that would pass the tenant's
    /// storage quota is refused.
    quotas: Quotas,
}

impl StrategyCatalog {
    pub fn new(store: Store, strategies: Arc<StrategyService>) -> Self {
        Self { store, strategies, toolchain_problem: None, quotas: Quotas::default() }
    }

    pub fn with_quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = quotas;
        self
    }

    /// Refuses Python uploads with `problem` (what the start-up check of
    /// the toolchain found), instead of queueing builds that must fail.
    pub fn without_toolchain(mut self, problem: String) -> Self {
        self.toolchain_problem = Some(problem.into());
        self
    }

    fn check_buildable(&self, source: &VersionSource<'_>) -> Result<(), StrategyError> {
        match (source, &self.toolchain_problem) {
            (VersionSource::Python(_), Some(problem)) => Err(StrategyError::NoToolchain(problem.to_string())),
            _ => Ok(()),
        }
    }

    /// A new strategy of `campaign_id`, building.
    pub async fn upload(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        name: &str,
        kind: StrategyType,
        source: VersionSource<'_>,
    ) -> Result<StrategyView, StrategyError> {
        let name = checked_name(name)?;
        self.check_buildable(&source)?;
        self.store.tenants().admit_storage(tenant_id, source.bytes(), self.quotas).await?;
        let start = source.start(&self.strategies).await;
        let (id, version) =
            self.store.strategies().add_strategy_version(tenant_id, campaign_id, &name, kind, source.input(), start).await?;
        // Also when it failed at once: a build this node runs for the
        // version it replaced stops now.
        self.strategies.queued(&self.store, &id, version);
        Ok(self.store.strategies().strategy(tenant_id, &id).await?)
    }

    /// A new version of strategy `id`, building; renamed when `name` is
    /// given. `kind`, when given, must be the strategy's own.
    pub async fn edit(
        &self,
        tenant_id: &str,
        id: &str,
        name: Option<&str>,
        kind: Option<StrategyType>,
        source: VersionSource<'_>,
    ) -> Result<StrategyView, StrategyError> {
        let name = name.map(checked_name).transpose()?;
        self.check_buildable(&source)?;
        let current = self.store.strategies().strategy(tenant_id, id).await?;
        if kind.is_some_and(|kind| kind != current.kind) {
            return Err(StrategyError::TypeChanged { current: current.kind });
        }
        let name = name.unwrap_or(current.name);
        self.store.tenants().admit_storage(tenant_id, source.bytes(), self.quotas).await?;
        let start = source.start(&self.strategies).await;
        let (id, version) = self
            .store
            .strategies().add_strategy_version(tenant_id, &current.campaign_id, &name, current.kind, source.input(), start)
            .await?;
        // Also when it failed at once: a build this node runs for the
        // version it replaced stops now.
        self.strategies.queued(&self.store, &id, version);
        Ok(self.store.strategies().strategy(tenant_id, &id).await?)
    }

    /// Deletes strategy `id` and its versions.
    pub async fn remove(&self, tenant_id: &str, id: &str) -> Result<(), StrategyError> {
        self.store.strategies().delete_strategy(tenant_id, id).await?;
        // The delete has happened; code left in memory or on disk is only
        // a cache, which the next sweep empties if this one fails.
        if let Err(error) = self.strategies.prune(&self.store).await {
            tracing::warn!(%error, "could not prune a deleted strategy");
        }
        Ok(())
    }
}

/// A strategy's name, trimmed, on upload and on edit alike.
fn checked_name(name: &str) -> Result<String, StrategyError> {
    match stratagem_domain::is_valid_name(name, NAME_MAX_CHARS) {
        true => Ok(name.trim().to_owned()),
        false => Err(StrategyError::InvalidName),
    }
}
