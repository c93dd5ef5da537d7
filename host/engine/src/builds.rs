//! The build queue. An upload stores its version as queued; every node's
//! worker claims queued builds while it has a free build slot, and no
//! tenant runs more than its share of builds at once across the nodes, so
//! one tenant's uploads cannot hold every slot. A claimed build is leased:
//! its node renews the lease while it works, and a node that finds an
//! expired lease (its node stopped) takes the build over, at most
//! [`MAX_BUILD_ATTEMPTS`] times. A version replaced by a newer upload is
//! cancelled: the queue skips it, and a build already running stops at
//! once on this node, or at its next lease renewal on another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stratagem_domain::strategy::{BuildError as StoredBuildError, BuildErrorKind, PythonBuildError};
use stratagem_runtime::{BuildError, LoadError, StrategySource};
use stratagem_store::{BuildClaim, BuildJob, OwnedVersionInput, Store};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::strategies::PinGuard;
use crate::StrategyService;

/// A build interrupted this many times (its node died each time) fails
/// instead of taking down the next node too.
pub const MAX_BUILD_ATTEMPTS: i64 = 3;

/// How many builds run at once: on this node, and per tenant over all nodes.
#[derive(Debug, Clone, Copy)]
pub struct BuildSlots {
    pub per_node: usize,
    pub per_tenant: usize,
}

impl Default for BuildSlots {
    fn default() -> Self {
        Self { per_node: 2, per_tenant: 1 }
    }
}

/// This node's side of the queue: its slots, and the builds it runs.
pub(crate) struct BuildQueue {
    slots: Arc<Semaphore>,
    per_tenant: i64,
    wake: Notify,
    started: std::sync::Once,
    /// Running builds by strategy: (version, task), so an upload cancels
    /// the build of the version it replaces.
    running: Mutex<HashMap<String, (i64, tokio::task::AbortHandle)>>,
    /// Set when the node shuts down: it claims no more builds.
    stopping: std::sync::atomic::AtomicBool,
}

impl BuildQueue {
    pub(crate) fn new(slots: BuildSlots) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.per_node.max(1))),
            per_tenant: slots.per_tenant.max(1) as i64,
            wake: Notify::new(),
            started: std::sync::Once::new(),
            running: Mutex::default(),
            stopping: Default::default(),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, tokio::task::AbortHandle)>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StrategyService {
    /// Tells the queue a version was stored: the worker starts (once per
    /// node), a build this node runs for an older version of the strategy
    /// stops, and the worker looks for work at once.
    pub fn queued(self: &Arc<Self>, store: &Store, strategy_id: &str, version: i64) {
        self.start_build_worker(store);
        let replaced = {
            let mut running = self.queue.running();
            match running.get(strategy_id) {
                Some((building, _)) if *building < version => running.remove(strategy_id),
                _ => None,
            }
        };
        if let Some((_, task)) = replaced {
            task.abort(); // the store already marked it cancelled
        }
        self.queue.wake.notify_one();
    }

    /// Starts this node's build worker if it is not running yet, and the
    /// preparation of the platform's component. It runs until the process
    /// ends.
    pub fn start_build_worker(self: &Arc<Self>, store: &Store) {
        let (service, store) = (self.clone(), store.clone());
        self.queue.started.call_once(move || {
            let platform = service.clone();
            tokio::spawn(async move {
                // Logged when it fails; the first build then tries again.
                let _ = platform.platform().await;
            });
            tokio::spawn(async move { service.work_the_queue(store).await });
        });
    }

    /// Takes over builds whose node stopped (their lease expired), every
    /// `sweep_every`, and drops strategies nobody can run any more, until
    /// the process ends.
    pub fn spawn_build_recovery(self: &Arc<Self>, store: Store) -> tokio::task::JoinHandle<()> {
        self.start_build_worker(&store);
        let service = self.clone();
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(service.build_leases.sweep_every);
            loop {
                sweep.tick().await;
                while service.claim_and_start(&store, BuildClaim::Stale).await.is_some() {}
                if let Err(error) = service.prune(&store).await {
                    tracing::warn!(%error, "could not prune unused strategies");
                }
            }
        })
    }

    /// For a node shutting down: claims no more builds, stops those it
    /// runs (their build process is killed) and puts them back in the
    /// queue, where another node — or this one, restarted — takes them at
    /// once. Returns how many it put back.
    pub async fn release_builds(&self, store: &Store) -> usize {
        self.queue.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        let running: Vec<(String, (i64, tokio::task::AbortHandle))> = self.queue.running().drain().collect();
        let mut released = 0;
        for (strategy_id, (version, task)) in running {
            task.abort();
            match store.strategies().release_build(&strategy_id, version).await {
                Ok(true) => released += 1,
                Ok(false) => {} // it finished meanwhile, or was cancelled
                Err(error) => tracing::warn!(%strategy_id, version, %error, "could not put a build back in the queue; another node takes it when its lease lapses"),
            }
        }
        released
    }

    async fn work_the_queue(self: Arc<Self>, store: Store) {
        loop {
            if self.claim_and_start(&store, BuildClaim::Queued).await.is_none() {
                // Nothing to claim (or no slot): wait for an upload here,
                // a finished build, or another node's upload.
                let _ = tokio::time::timeout(self.build_leases.poll_every, self.queue.wake.notified()).await;
            }
        }
    }

    /// Claims one build when a slot is free and starts it (or fails it,
    /// when it was interrupted too often); `None` when there was no slot
    /// or nothing to claim.
    async fn claim_and_start(self: &Arc<Self>, store: &Store, which: BuildClaim) -> Option<()> {
        if self.queue.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let permit = self.queue.slots.clone().try_acquire_owned().ok()?;
        let now = chrono::Utc::now();
        let until = now + self.build_leases.lease;
        let job = match store.strategies().claim_next_build(which, now, until, self.queue.per_tenant).await {
            Ok(Some(job)) => job,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(%error, "could not claim a strategy build");
                return None;
            }
        };
        if which == BuildClaim::Stale {
            tracing::warn!(strategy_id = %job.strategy_id, version = job.version, attempt = job.attempts, "taking over a build whose node stopped");
        }
        if job.attempts > MAX_BUILD_ATTEMPTS {
            let error = StoredBuildError::new(BuildErrorKind::Internal, format!(
                "the build was interrupted {MAX_BUILD_ATTEMPTS} times (its server stopped each time); upload the strategy again, or contact support if it persists"
            ));
            if let Err(error) = store.strategies().finish_strategy_build(&job.strategy_id, job.version, Err(error)).await {
                tracing::error!(%error, "could not fail an interrupted build");
            }
            return Some(());
        }
        self.spawn_build(store.clone(), job, permit);
        Some(())
    }

    /// Builds and compiles, renewing the build's lease while it works; the
    /// outcome lands on the version row, where any node can read it.
    fn spawn_build(self: &Arc<Self>, store: Store, job: BuildJob, permit: OwnedSemaphorePermit) {
        let service = self.clone();
        let strategy_id = job.strategy_id.clone();
        let version = job.version;
        let task = tokio::spawn(async move {
            let _permit = permit;
            let leases = service.build_leases;
            let build = service.build(&store, &job.strategy_id, job.version, job.input);
            tokio::pin!(build);
            let mut renew = tokio::time::interval(leases.lease / 4);
            renew.tick().await;
            let outcome = loop {
                tokio::select! {
                    outcome = &mut build => break outcome,
                    _ = renew.tick() => {
                        match store.strategies().renew_build_lease(&job.strategy_id, job.version, chrono::Utc::now() + leases.lease).await {
                            Ok(true) => {}
                            // Cancelled, deleted, or finished by a node that took it over.
                            Ok(false) => return service.build_ended(&job.strategy_id, job.version),
                            Err(error) => tracing::warn!(strategy_id = %job.strategy_id, version = job.version, %error, "could not renew a build lease"),
                        }
                    }
                }
            };
            let stored = match &outcome {
                Ok((component, hash, _pinned)) => store.strategies().finish_strategy_build(&job.strategy_id, job.version, Ok((component, hash))).await,
                Err(error) => store.strategies().finish_strategy_build(&job.strategy_id, job.version, Err(error.clone())).await,
            };
            if let Err(error) = stored {
                tracing::error!(strategy_id = %job.strategy_id, version = job.version, %error, "could not record the build outcome");
            }
            if let Ok((_, _, pinned)) = outcome {
                drop(pinned); // its row is written: it is in use, or prunable
                // The version before it can no longer run.
                if let Err(error) = service.prune(&store).await {
                    tracing::warn!(%error, "could not prune unused strategies");
                }
            }
            service.build_ended(&job.strategy_id, job.version);
        });
        self.queue.running().insert(strategy_id, (version, task.abort_handle()));
    }

    fn build_ended(&self, strategy_id: &str, version: i64) {
        let mut running = self.queue.running();
        if running.get(strategy_id).is_some_and(|(building, _)| *building == version) {
            running.remove(strategy_id);
        }
        drop(running);
        self.queue.wake.notify_one(); // a slot is free
    }

    /// What a version runs, made ready on this node:
    /// - sources run in the platform's component: their build is loading
    ///   them once, under an invocation's limits, so that what a build
    ///   would report (a syntax error, an exception at top level) is
    ///   reported now; the version stores them as a bundle;
    /// - a prebuilt component is checked against the contract and
    ///   compiled; the version row says when compiling starts, for the
    ///   user watching.
    async fn build(
        self: &Arc<Self>,
        store: &Store,
        strategy_id: &str,
        version: i64,
        input: OwnedVersionInput,
    ) -> Result<(Vec<u8>, String, PinGuard), StoredBuildError> {
        let stored = match input {
            OwnedVersionInput::Component(bytes) => {
                if StrategySource::from_bundle(&bytes).is_some() {
                    let error = LoadError::NotAComponent("these bytes are Python sources; upload them as sources".into());
                    return Err(StoredBuildError::new(BuildErrorKind::Contract, error.to_string()));
                }
                if let Err(error) = store.strategies().mark_compiling(strategy_id, version, chrono::Utc::now()).await {
                    tracing::warn!(%strategy_id, version, %error, "could not record that a build is compiling");
                }
                bytes
            }
            OwnedVersionInput::Source { entry, sources } => {
                self.build_source(&StrategySource { entry, files: sources }).await.map_err(|error| build_error(&error))?
            }
        };
        let hash = stratagem_runtime::content_hash(&stored);
        // Loaded before its version row says so: a sweep meanwhile must
        // not take it for unused.
        let pinned = self.pin(&hash);
        match self.load(&hash, stored.clone()).await {
            Ok(_) => Ok((stored, hash, pinned)),
            Err(error @ (LoadError::NotAComponent(_) | LoadError::ContractMismatch(_))) => {
                Err(StoredBuildError::new(BuildErrorKind::Contract, error.to_string()))
            }
            Err(error) => {
                tracing::error!(%error, "making a strategy ready failed on this node");
                Err(internal_error())
            }
        }
    }
}

fn internal_error() -> StoredBuildError {
    StoredBuildError::new(BuildErrorKind::Internal, "the build service failed; try again, or contact support if it persists")
}

/// A build error as the version row keeps it and the API shows it: a
/// `kind`, a `detail` for people, and where in the user's code it was.
pub(crate) fn build_error(error: &BuildError) -> StoredBuildError {
    let at = |python: &stratagem_runtime::PythonBuildError| PythonBuildError {
        type_name: python.type_name.clone(),
        message: python.message.clone(),
        file: python.file.clone(),
        line: python.line,
        column: python.column,
        source: python.source.as_deref().map(|line| line.trim().to_owned()),
    };
    let (kind, python) = match error {
        BuildError::Python(python) => (BuildErrorKind::Python, Some(at(python))),
        BuildError::InvalidSource(_) => (BuildErrorKind::InvalidSource, None),
        BuildError::Timeout(_) | BuildError::CpuLimit(_) => (BuildErrorKind::Timeout, None),
        BuildError::MemoryLimit { python, .. } => (BuildErrorKind::MemoryLimit, python.as_deref().map(at)),
        BuildError::SnapshotTooLarge => (BuildErrorKind::TooLarge, None),
        BuildError::Toolchain(detail) => {
            // Server paths and tool output are for the operator's log.
            tracing::error!(%detail, "strategy build failed in the toolchain");
            return internal_error();
        }
    };
    StoredBuildError { kind, detail: error.to_string(), python }
}

/// How long a build is leased for, how often nodes look for builds whose
/// node stopped, and how often an idle worker looks for queued builds
/// another node accepted. A build renews its lease at a quarter of it.
#[derive(Debug, Clone, Copy)]
pub struct BuildLeases {
    pub lease: Duration,
    pub sweep_every: Duration,
    pub poll_every: Duration,
}

impl Default for BuildLeases {
    fn default() -> Self {
        Self { lease: Duration::from_secs(120), sweep_every: Duration::from_secs(30), poll_every: Duration::from_secs(2) }
    }
}
