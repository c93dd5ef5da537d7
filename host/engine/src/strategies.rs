//! Strategies as the engine and the API run them: built components loaded
//! once per node and kept by content hash.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stratagem_domain::StrategyType;
use stratagem_runtime::{Builder, LoadError, Runtime, Strategy};
use stratagem_store::{Store, VersionInput};

/// How long a build is leased for, and how often nodes look for builds
/// whose node stopped. A build renews its lease at a quarter of it.
#[derive(Debug, Clone, Copy)]
pub struct BuildLeases {
    pub lease: Duration,
    pub sweep_every: Duration,
}

impl Default for BuildLeases {
    fn default() -> Self {
        Self { lease: Duration::from_secs(120), sweep_every: Duration::from_secs(30) }
    }
}

/// Builds strategies and keeps loaded versions, by content hash. A cache
/// only: any node can rebuild it from the database.
pub struct StrategyService {
    pub runtime: Arc<Runtime>,
    pub builder: Builder,
    pub build_leases: BuildLeases,
    loaded: Mutex<HashMap<String, Arc<Strategy>>>,
}

impl StrategyService {
    pub fn new(runtime: Arc<Runtime>, builder: Builder) -> Self {
        Self { runtime, builder, build_leases: BuildLeases::default(), loaded: Mutex::default() }
    }

    pub fn with_build_leases(mut self, leases: BuildLeases) -> Self {
        self.build_leases = leases;
        self
    }

    /// The loaded strategy for a stored component.
    /// The strategy of a component already loaded on this node.
    pub fn cached(&self, hash: &str) -> Option<Arc<Strategy>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).get(hash).cloned()
    }

    pub fn load(&self, hash: &str, component: &[u8]) -> Result<Arc<Strategy>, LoadError> {
        if let Some(strategy) = self.cached(hash) {
            return Ok(strategy);
        }
        let (strategy, _) = self.runtime.load(component)?;
        let strategy = Arc::new(strategy);
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).insert(hash.to_owned(), strategy.clone());
        Ok(strategy)
    }
}


impl StrategyService {
    /// Loads a component built elsewhere (the CLI, a benchmark) and makes
    /// it the campaign's active strategy of `kind`, as a finished build.
    pub async fn install(
        &self,
        store: &Store,
        tenant_id: &str,
        campaign_id: &str,
        kind: StrategyType,
        component: &[u8],
    ) -> Result<(), InstallError> {
        let hash = stratagem_runtime::content_hash(component);
        self.load(&hash, component)?;
        let lease = chrono::Utc::now() + chrono::Duration::hours(1);
        let input = VersionInput::Component(component);
        let (id, version) = store.add_strategy_version(tenant_id, campaign_id, kind.as_str(), kind, input, lease).await?;
        store.finish_strategy_build(&id, version, Ok((component, &hash))).await?;
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Store(#[from] stratagem_store::StoreError),
}
