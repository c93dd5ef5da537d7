//! Strategies as the engine and the API run them: built components loaded
//! once per node and kept by content hash.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use stratagem_domain::StrategyType;
use stratagem_runtime::{Builder, LoadError, Runtime, Strategy};
use stratagem_store::{Store, VersionInput};

use crate::builds::{BuildLeases, BuildQueue, BuildSlots};

/// Builds strategies and keeps loaded versions, by content hash. A cache
/// only: any node can rebuild it from the database. It holds at most
/// `max_loaded_bytes` of compiled code (at least the strategy just
/// loaded), evicting the least recently used; an evicted strategy that an
/// invocation still holds lives until that invocation ends.
pub struct StrategyService {
    pub runtime: Arc<Runtime>,
    pub builder: Builder,
    pub build_leases: BuildLeases,
    pub(crate) queue: BuildQueue,
    loaded: Mutex<Loaded>,
}

/// Default budget of compiled strategy code kept loaded on a node.
pub const DEFAULT_MAX_LOADED_BYTES: usize = 1 << 30;

struct Loaded {
    by_hash: HashMap<String, LoadedStrategy>,
    /// Every component this node loaded, evicted or not: its compiled
    /// code may still be in the disk cache.
    known: HashSet<String>,
    /// Components built here whose version row is not written yet:
    /// pruning must not take them for unused.
    pinned: HashMap<String, usize>,
    total_bytes: usize,
    max_bytes: usize,
    /// Bumped on every use: the entry with the smallest stamp goes first.
    clock: u64,
}

struct LoadedStrategy {
    strategy: Arc<Strategy>,
    last_used: u64,
}

impl Loaded {
    fn get(&mut self, hash: &str) -> Option<Arc<Strategy>> {
        self.clock += 1;
        let entry = self.by_hash.get_mut(hash)?;
        entry.last_used = self.clock;
        Some(entry.strategy.clone())
    }

    fn insert(&mut self, hash: &str, strategy: Arc<Strategy>) -> Arc<Strategy> {
        if let Some(existing) = self.get(hash) {
            return existing; // loaded meanwhile by another caller
        }
        self.total_bytes += strategy.code_bytes();
        self.known.insert(hash.to_owned());
        self.by_hash.insert(hash.to_owned(), LoadedStrategy { strategy: strategy.clone(), last_used: self.clock });
        while self.total_bytes > self.max_bytes && self.by_hash.len() > 1 {
            let Some(oldest) = self.by_hash.iter().min_by_key(|(_, entry)| entry.last_used).map(|(hash, _)| hash.clone())
            else {
                break;
            };
            self.remove(&oldest);
        }
        strategy
    }

    fn remove(&mut self, hash: &str) -> bool {
        let Some(entry) = self.by_hash.remove(hash) else { return false };
        self.total_bytes -= entry.strategy.code_bytes();
        true
    }
}

impl StrategyService {
    pub fn new(runtime: Arc<Runtime>, builder: Builder) -> Self {
        let loaded = Loaded { by_hash: HashMap::new(), known: HashSet::new(), pinned: HashMap::new(), total_bytes: 0, max_bytes: DEFAULT_MAX_LOADED_BYTES, clock: 0 };
        Self {
            runtime,
            builder,
            build_leases: BuildLeases::default(),
            queue: BuildQueue::new(BuildSlots::default()),
            loaded: Mutex::new(loaded),
        }
    }

    /// How many builds run at once, on this node and per tenant.
    pub fn with_build_slots(mut self, slots: BuildSlots) -> Self {
        self.queue = BuildQueue::new(slots);
        self
    }

    pub fn with_build_leases(mut self, leases: BuildLeases) -> Self {
        self.build_leases = leases;
        self
    }

    /// The most compiled code kept loaded (the cache's budget).
    pub fn with_max_loaded_bytes(self, max_bytes: usize) -> Self {
        self.lock().max_bytes = max_bytes;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Loaded> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The strategy of a component already loaded on this node.
    pub fn cached(&self, hash: &str) -> Option<Arc<Strategy>> {
        self.lock().get(hash)
    }

    /// What is loaded: how many strategies and how much compiled code.
    pub fn loaded_usage(&self) -> (usize, usize) {
        let loaded = self.lock();
        (loaded.by_hash.len(), loaded.total_bytes)
    }

    /// Keeps `hash` from being pruned until the guard is dropped.
    pub(crate) fn pin(self: &Arc<Self>, hash: &str) -> PinGuard {
        *self.lock().pinned.entry(hash.to_owned()).or_default() += 1;
        PinGuard { service: self.clone(), hash: hash.to_owned() }
    }

    pub fn load(&self, hash: &str, component: &[u8]) -> Result<Arc<Strategy>, LoadError> {
        if let Some(strategy) = self.cached(hash) {
            return Ok(strategy);
        }
        let (strategy, _) = self.runtime.load(component)?;
        Ok(self.lock().insert(hash, Arc::new(strategy)))
    }

    /// Drops components no version can run any more (deleted, or older
    /// than their strategy's active version) from memory and from the
    /// disk cache of compiled code; returns how many. Only what this node
    /// loaded since it started is considered (the disk cache may hold
    /// other deployments' code), and the database decides.
    pub async fn prune(&self, store: &Store) -> Result<usize, stratagem_store::StoreError> {
        let known: Vec<String> = self.lock().known.iter().cloned().collect();
        if known.is_empty() {
            return Ok(0);
        }
        let runnable = store.strategies().runnable_component_hashes(&known).await?;
        let mut forgotten = 0;
        for hash in known.iter().filter(|hash| !runnable.contains(*hash)) {
            let mut loaded = self.lock();
            if loaded.pinned.contains_key(hash) {
                continue;
            }
            loaded.remove(hash);
            loaded.known.remove(hash);
            drop(loaded);
            forgotten += 1;
            if let Err(error) = self.runtime.forget(hash) {
                tracing::warn!(%hash, %error, "could not delete a compiled strategy");
            }
        }
        Ok(forgotten)
    }
}

/// A component built on this node whose version row is being written.
pub(crate) struct PinGuard {
    service: Arc<StrategyService>,
    hash: String,
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        let mut loaded = self.service.lock();
        if let Some(count) = loaded.pinned.get_mut(&self.hash) {
            *count -= 1;
            if *count == 0 {
                loaded.pinned.remove(&self.hash);
            }
        }
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
        let (id, version) = store.strategies().add_strategy_version(tenant_id, campaign_id, kind.as_str(), kind, input, Some(lease)).await?;
        store.strategies().finish_strategy_build(&id, version, Ok((component, &hash))).await?;
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
