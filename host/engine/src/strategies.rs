//! Strategies as the engine and the API run them: components, and sources
//! run in the platform's component, loaded once per node and kept by
//! content hash.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use stratagem_domain::StrategyType;
use stratagem_domain::strategy::BuildError as StoredBuildError;
use stratagem_runtime::{BuildError, Builder, Limits, LoadError, Platform, Runtime, Strategy, StrategySource};
use stratagem_store::{Store, VersionInput, VersionStart};

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
    /// The platform's own component, which runs strategies uploaded as
    /// source: prepared once the build worker starts, or by the first
    /// build or load that needs it; a failure is retried by the next.
    platform: tokio::sync::OnceCell<Arc<Platform>>,
    /// Checks running at once: each holds an instance slot, which a flood
    /// of uploads must not take from invocations.
    syntax_slots: tokio::sync::Semaphore,
}

/// Syntax checks a node runs at once; an upload arriving while all run
/// goes to its build unchecked.
const SYNTAX_CHECKS_AT_ONCE: usize = 2;

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
            platform: tokio::sync::OnceCell::new(),
            syntax_slots: tokio::sync::Semaphore::new(SYNTAX_CHECKS_AT_ONCE),
        }
    }

    /// The platform's component, built and loaded on the first call
    /// (seconds; then from the build and artifact caches). `Err`, logged,
    /// when it cannot be prepared: the toolchain is broken, which is the
    /// operator's to mend, so a user sees an internal error.
    pub async fn platform(&self) -> Result<&Arc<Platform>, LoadError> {
        let prepare = || async {
            let unavailable = |error: String| {
                tracing::error!(%error, "could not prepare the platform component; strategies uploaded as source cannot run");
                LoadError::Platform(error)
            };
            let bytes = self.builder.build_platform().await.map_err(|error| unavailable(error.to_string()))?;
            let runtime = self.runtime.clone();
            match tokio::task::spawn_blocking(move || runtime.load_platform(&bytes)).await {
                Ok(Ok(platform)) => Ok(Arc::new(platform)),
                Ok(Err(error)) => Err(unavailable(error.to_string())),
                Err(panic) => Err(unavailable(format!("loading it panicked: {panic}"))),
            }
        };
        self.platform.get_or_try_init(prepare).await
    }

    /// The build of a strategy uploaded as source: its sources loaded
    /// once into the platform's component under an invocation's limits,
    /// so that a syntax error or an exception at top level is reported as
    /// a build reports it. Returns what its version stores: the sources
    /// as a bundle, which [`StrategyService::load`] runs.
    pub async fn build_source(&self, source: &StrategySource) -> Result<Vec<u8>, BuildError> {
        source.validate()?;
        let platform = self.platform().await.map_err(|error| BuildError::Toolchain(error.to_string()))?;
        platform.try_load(source, Limits::default()).await?;
        Ok(source.to_bundle())
    }

    /// The syntax error of an upload's entry file, as its build would
    /// report it, when the platform is ready and finds one. Never waits for
    /// the platform, nor for a check slot: the build alone decides then.
    pub async fn early_syntax_error(&self, source: &StrategySource) -> Option<StoredBuildError> {
        let checker = self.platform.get()?;
        let _slot = self.syntax_slots.try_acquire().ok()?;
        match checker.check(source, Limits::default()).await {
            Ok(found) => found.map(|python| crate::builds::build_error(&BuildError::Python(Box::new(python)))),
            Err(error) => {
                // Not a verdict on the source: its build runs under its own limits.
                tracing::warn!(%error, "the syntax check of an upload did not finish; its build decides");
                None
            }
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

    /// The strategy a version stores: a component, compiled (or found in
    /// the artifact cache) on a blocking thread, or a source bundle, run in
    /// the platform's component (prepared first if need be).
    pub async fn load(&self, hash: &str, stored: Vec<u8>) -> Result<Arc<Strategy>, LoadError> {
        if let Some(strategy) = self.cached(hash) {
            return Ok(strategy);
        }
        let strategy = match StrategySource::from_bundle(&stored) {
            Some(source) => {
                let source = source.map_err(|error| LoadError::ContractMismatch(error.to_string()))?;
                self.platform().await?.strategy(&source)?
            }
            None => {
                let runtime = self.runtime.clone();
                tokio::task::spawn_blocking(move || runtime.load(&stored))
                    .await
                    .map_err(|panic| LoadError::Platform(format!("compiling a strategy panicked: {panic}")))??
                    .0
            }
        };
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
    /// Loads a component built elsewhere (the CLI, a benchmark), or a
    /// version's stored sources ([`StrategyService::build_source`]), and
    /// makes it the campaign's active strategy of `kind`, as a finished
    /// build.
    pub async fn install(
        &self,
        store: &Store,
        tenant_id: &str,
        campaign_id: &str,
        kind: StrategyType,
        component: &[u8],
    ) -> Result<(), InstallError> {
        let hash = stratagem_runtime::content_hash(component);
        self.load(&hash, component.to_vec()).await?;
        let lease = chrono::Utc::now() + chrono::Duration::hours(1);
        let input = VersionInput::Component(component);
        let (id, version) = store.strategies().add_strategy_version(tenant_id, campaign_id, kind.as_str(), kind, input, VersionStart::Leased(lease)).await?;
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
