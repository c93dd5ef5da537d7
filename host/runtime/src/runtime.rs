//! The engine, loading components, and invoking hooks under limits.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use stratagem_domain::{CampaignContext, Contact, JsonMap, Message, StrategyType};
use stratagem_outbound::EgressPolicy;
use wasmtime::component::{HasSelf, InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::artifact_cache::{ArtifactCache, CacheOutcome};
use crate::function_cache::FunctionCache;
use crate::bindings;
use crate::clock::{Clock, SystemClock, VirtualClock};
use crate::componentize::is_out_of_memory;
use crate::convert;
use crate::error::{Frame, InvokeError, LoadError, PythonException};
use crate::host_state::{HostState, LogRecord};
use crate::limits::{Limits, Usage};
use crate::outbound_http::{Credentials, HttpClient, HttpPolicy};
use crate::python_library::PythonLibrary;
use crate::platform::{limit_breach, Platform, Sources};

/// Epoch ticks drive the wall-clock deadline of running wasm code.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Instantiation is not charged to the hook's budget (wasmtime ≥ 46 meters
/// it), but it must not be unbounded either.
pub(crate) const INSTANTIATION_FUEL: u64 = 10_000_000_000;
/// Nor to the hook's time: it is the platform's work (its memory image set
/// up), which a busy node can slow down past a call's limit before the
/// strategy's code has run. Each guest call sets its own deadline.
pub(crate) const INSTANTIATION_TIME: Duration = Duration::from_secs(30);
/// Idle reused instances kept per (tenant, strategy version).
const MAX_IDLE_PER_TENANT: usize = 4;

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled artifacts are kept between restarts.
    pub cache_dir: PathBuf,
    /// Concurrent instances (pooling allocator slots), live and idle.
    pub max_instances: u32,
    /// The largest `Limits::memory_bytes` any invocation may ask for.
    pub max_memory_bytes: usize,
    /// Write a perf map for `perf record`, naming the guest's compiled
    /// functions (CPython's, the SDK glue's) instead of anonymous JIT code.
    pub perf_map: bool,
    /// Which addresses strategies' outbound HTTP may reach, besides their
    /// allowlist: the service's one egress policy.
    pub egress: EgressPolicy,
    /// The interpreter's library guests import from at run time (read-only);
    /// without it, only what a build imported exists.
    pub python_library: Option<PythonLibrary>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: PathBuf::from(".stratagem/cache"),
            max_instances: 64,
            max_memory_bytes: 1 << 30,
            perf_map: false,
            egress: EgressPolicy::default(),
            python_library: None,
        }
    }
}

/// How invocations of one strategy version share interpreter state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Every invocation starts from the built snapshot: nothing a previous
    /// contact's invocation did is visible. The safe default.
    #[default]
    FreshInstance,
    /// An instance is kept per (tenant, strategy version) and reused while
    /// healthy, so module-level state written by one invocation is seen by
    /// the next one of the same tenant and version — never across tenants
    /// or versions. Discarded on any trap or error.
    ReuseInstance,
}

/// Everything an invocation may vary besides its input.
#[derive(Clone)]
pub struct InvokeOptions {
    pub tenant: String,
    pub campaign: CampaignContext,
    pub limits: Limits,
    pub isolation: Isolation,
    pub http: HttpPolicy,
    /// Where `http.get(url, auth="…")` finds the tenant's credentials;
    /// none: such requests are denied.
    pub credentials: Option<Arc<dyn Credentials>>,
    pub clock: Arc<dyn Clock>,
}

impl Default for InvokeOptions {
    fn default() -> Self {
        Self {
            tenant: String::new(),
            campaign: CampaignContext::default(),
            limits: Limits::default(),
            isolation: Isolation::default(),
            http: HttpPolicy::default(),
            credentials: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// A hook call and its input.
#[derive(Debug, Clone)]
pub enum Hook {
    DataLoad { contact: Contact, existing: Option<Contact> },
    Aggregation { contact: Contact, session_results: Option<JsonMap> },
    ContactAnswer { contact: Contact, message: Message },
}

impl Hook {
    /// The hook's name, as metrics and logs label it.
    pub fn name(&self) -> &'static str {
        match self {
            Hook::DataLoad { .. } => "data_load",
            Hook::Aggregation { .. } => "aggregation",
            Hook::ContactAnswer { .. } => "contact_answer",
        }
    }

    /// The strategy type whose hook this is.
    pub fn strategy_type(&self) -> StrategyType {
        match self {
            Hook::DataLoad { .. } => StrategyType::DataLoad,
            Hook::Aggregation { .. } => StrategyType::Aggregation,
            Hook::ContactAnswer { .. } => StrategyType::ContactAnswer,
        }
    }

    /// The contact it runs for.
    pub fn contact(&self) -> &Contact {
        match self {
            Hook::DataLoad { contact, .. } | Hook::Aggregation { contact, .. } | Hook::ContactAnswer { contact, .. } => contact,
        }
    }

    /// Its arguments as JSON, named as `stratagem strategy run` takes
    /// them: `contact`, and `existing`, `session_results` or `message`.
    pub fn input(&self) -> serde_json::Value {
        match self {
            Hook::DataLoad { contact, existing } => serde_json::json!({"contact": contact, "existing": existing}),
            Hook::Aggregation { contact, session_results } => {
                serde_json::json!({"contact": contact, "session_results": session_results})
            }
            Hook::ContactAnswer { contact, message } => serde_json::json!({"contact": contact, "message": message}),
        }
    }

    /// The hook of `strategy_type` with the arguments [`Hook::input`] wrote.
    pub fn from_input(strategy_type: StrategyType, mut input: serde_json::Value) -> Result<Self, serde_json::Error> {
        let mut take = |name: &str| input.get_mut(name).map(serde_json::Value::take).unwrap_or_default();
        let contact = serde_json::from_value(take("contact"))?;
        Ok(match strategy_type {
            StrategyType::DataLoad => Hook::DataLoad { contact, existing: serde_json::from_value(take("existing"))? },
            StrategyType::Aggregation => {
                Hook::Aggregation { contact, session_results: serde_json::from_value(take("session_results"))? }
            }
            StrategyType::ContactAnswer => Hook::ContactAnswer { contact, message: serde_json::from_value(take("message"))? },
        })
    }
}

/// The outcome of one invocation, with its log and what it consumed.
#[derive(Debug, Clone, Serialize)]
pub struct Invocation {
    /// The time the strategy saw throughout the call: the clock is read
    /// once, so a replay with the same time computes the same result.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The contact to store; `None` means "no change" (contact answer only).
    pub result: Result<Option<Contact>, InvokeError>,
    pub logs: Vec<LogRecord>,
    /// Log records dropped because the invocation exceeded its log cap.
    pub dropped_log_records: usize,
    pub usage: Usage,
    /// Whether an existing instance served the call.
    pub reused_instance: bool,
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: ArtifactCache,
    client: HttpClient,
    max_memory_bytes: usize,
    /// Idle reused instances across all strategies, and their cap: half
    /// the pool's slots, so idle instances never starve new invocations.
    idle_instances: AtomicUsize,
    max_idle_instances: usize,
    ticker_stop: Arc<AtomicBool>,
    /// The read-only directories every guest sees, opened once and shared.
    filesystem: wasmtime_wasi::filesystem::WasiFilesystemCtx,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let functions = FunctionCache::open(&config.cache_dir)
            .map_err(|source| LoadError::Cache { path: config.cache_dir.display().to_string(), source })?;
        let engine = engine_config(&config, functions).and_then(|engine| Engine::new(&engine)).map_err(|error| LoadError::Cache {
            path: config.cache_dir.display().to_string(),
            source: std::io::Error::other(format!("engine configuration: {error:#}")),
        })?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(contract_error)?;
        bindings::Strategy::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state).map_err(contract_error)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (ticking_engine, stop) = (engine.clone(), ticker_stop.clone());
        std::thread::Builder::new()
            .name("stratagem-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticking_engine.increment_epoch();
                }
            })
            .map_err(|source| LoadError::Cache { path: "epoch thread".into(), source })?;

        let client = HttpClient::new(config.egress).map_err(|error| LoadError::Cache {
                path: "http client".into(),
                source: std::io::Error::other(error.to_string()),
            })?;
        let filesystem = guest_filesystem(config.python_library.as_ref())?;
        Ok(Self {
            filesystem,
            cache: ArtifactCache::open(&config.cache_dir, &engine)?,
            engine,
            linker,
            client,
            max_memory_bytes: config.max_memory_bytes,
            idle_instances: AtomicUsize::new(0),
            max_idle_instances: (config.max_instances / 2) as usize,
            ticker_stop,
        })
    }

    /// Compiles (or finds in the cache) a component and checks it against
    /// the contract: it may import only what the host provides and must
    /// export the hooks.
    pub fn load(self: &Arc<Self>, component_bytes: &[u8]) -> Result<(Strategy, CacheOutcome), LoadError> {
        let (component, hash, outcome) = self.cache.load(&self.engine, component_bytes)?;
        let image = component.image_range();
        let code_bytes = (image.end as usize).saturating_sub(image.start as usize);
        let pre = self.linker.instantiate_pre(&component).map_err(contract_error)?;
        let strategy = Strategy::new(Arc::clone(self), pre, hash, code_bytes, None)?;
        Ok((strategy, outcome))
    }

    /// Deletes the compiled artifact of a component from the disk cache;
    /// loading it again compiles it again.
    pub fn forget(&self, hash: &str) -> Result<(), LoadError> {
        self.cache.remove(hash).map_err(|source| LoadError::Cache { path: format!("artifact {hash}"), source })
    }

    /// The platform's own component (`platform.rs`), compiled — or found
    /// in the cache — like a strategy.
    pub fn load_platform(self: &Arc<Self>, component_bytes: &[u8]) -> Result<Platform, LoadError> {
        let (component, _, _) = self.cache.load(&self.engine, component_bytes)?;
        let pre = self.linker.instantiate_pre(&component).map_err(contract_error)?;
        Platform::new(Arc::clone(self), pre)
    }

    /// The most memory an instance may have: what the pool's slots hold.
    pub(crate) fn max_memory_bytes(&self) -> usize {
        self.max_memory_bytes
    }

    pub(crate) fn new_store(&self, clock: Arc<dyn Clock>) -> Store<HostState> {
        let mut store = Store::new(&self.engine, HostState::new(self.client.clone(), clock, self.filesystem.clone()));
        store.limiter(|state| &mut state.memory);
        store
    }

    /// A new instance in a store of its own, with `memory_limit` and the
    /// instantiation's fuel; its deadline is `time` from now.
    pub(crate) async fn instantiate(
        &self,
        pre: &InstancePre<HostState>,
        clock: Arc<dyn Clock>,
        memory_limit: usize,
    ) -> Result<(Store<HostState>, wasmtime::component::Instance), InvokeError> {
        let mut store = self.new_store(clock);
        store.data_mut().memory.reset(memory_limit, 0);
        store.set_fuel(INSTANTIATION_FUEL).map_err(instantiate_error)?;
        store.set_epoch_deadline(ticks(INSTANTIATION_TIME));
        store.epoch_deadline_trap();
        match pre.instantiate_async(&mut store).await {
            Ok(instance) => Ok((store, instance)),
            Err(_) if store.data().memory.refused => Err(InvokeError::MemoryLimit { limit_bytes: memory_limit, exception: None }),
            Err(error) => Err(instantiate_error(error)),
        }
    }
}

/// What guests see of files: the library's directories, read-only, at
/// the guest paths the build gave them (`python_library.rs`).
fn guest_filesystem(library: Option<&PythonLibrary>) -> Result<wasmtime_wasi::filesystem::WasiFilesystemCtx, LoadError> {
    let mut builder = wasmtime_wasi::WasiCtx::builder();
    // Local, small reads (an import): done on the invoking thread rather
    // than handed to the blocking pool and waited for.
    builder.allow_blocking_current_thread(true);
    if let Some(library) = library {
        let mut preopen = |host: PathBuf, guest: &str| {
            builder.preopened_dir(&host, guest, wasmtime_wasi::FsPerms::ReadOnly).map(|_| ()).map_err(|error| LoadError::Cache {
                path: host.display().to_string(),
                source: std::io::Error::other(format!("the Python library: {error:#}")),
            })
        };
        preopen(library.stdlib(), "python")?;
        preopen(library.site_packages(), "1")?;
        if let Some(zoneinfo) = library.zoneinfo() {
            preopen(zoneinfo, "/usr/share/zoneinfo")?;
        }
    }
    Ok(builder.build().filesystem().clone())
}

fn engine_config(config: &RuntimeConfig, functions: FunctionCache) -> wasmtime::Result<Config> {
    let mut engine = Config::new();
    engine.consume_fuel(true).epoch_interruption(true).memory_init_cow(true);
    // A function compiled for one strategy is not compiled again for the
    // next (`function_cache.rs`).
    engine.enable_incremental_compilation(Arc::new(functions))?;
    if config.perf_map {
        engine.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let slots = config.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    // A componentize-py component holds ~a dozen core instances (CPython,
    // libc, WASI adapter shims) with a few memories and tables each.
    pool.total_component_instances(slots)
        .total_core_instances(slots * 32)
        .total_memories(slots * 4)
        .total_tables(slots * 16)
        .total_stacks(slots)
        .max_core_instances_per_component(64)
        .max_memories_per_component(8)
        .max_tables_per_component(32)
        .max_memory_size(config.max_memory_bytes)
        .table_elements(100_000)
        .max_unused_warm_slots(slots);
    engine.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(engine)
}

pub(crate) fn contract_error(error: wasmtime::Error) -> LoadError {
    LoadError::ContractMismatch(format!("{error:#}"))
}

struct Instance {
    store: Store<HostState>,
    hooks: bindings::hooks::Guest,
}

/// One loaded strategy version, ready to invoke concurrently: a component
/// of its own, or sources that run in the platform's component.
pub struct Strategy {
    runtime: Arc<Runtime>,
    pre: InstancePre<HostState>,
    hooks: bindings::hooks::GuestIndices,
    /// Loaded into each new instance of the platform's component.
    sources: Option<Sources>,
    hash: String,
    /// The size of its compiled code in memory.
    code_bytes: usize,
    /// Healthy reused instances, by tenant.
    idle: Mutex<HashMap<String, Vec<Instance>>>,
}

impl Strategy {
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        pre: InstancePre<HostState>,
        hash: String,
        code_bytes: usize,
        sources: Option<Sources>,
    ) -> Result<Self, LoadError> {
        let hooks = bindings::hooks::GuestIndices::new(&pre).map_err(contract_error)?;
        Ok(Self { runtime, pre, hooks, sources, hash, code_bytes, idle: Mutex::default() })
    }

    /// SHA-256 of the component bytes (or of the source bundle): the
    /// version's identity.
    pub fn content_hash(&self) -> &str {
        &self.hash
    }

    /// The memory its compiled code occupies (what a cache of loaded
    /// strategies weighs), beside its instances' own memories; for sources
    /// run in the platform's component, whose code every strategy shares,
    /// the sources' size.
    pub fn code_bytes(&self) -> usize {
        self.code_bytes
    }

    pub async fn invoke(&self, hook: &Hook, options: &InvokeOptions) -> Invocation {
        let invocation = self.invoke_unrecorded(hook, options).await;
        let outcome = match &invocation.result {
            Ok(_) => "ok",
            Err(error) => error.kind(),
        };
        let hook = hook.name();
        metrics::counter!("stratagem_strategy_invocations_total", "hook" => hook, "outcome" => outcome).increment(1);
        metrics::histogram!("stratagem_strategy_fuel", "hook" => hook).record(invocation.usage.fuel as f64);
        metrics::histogram!("stratagem_strategy_duration_seconds", "hook" => hook).record(invocation.usage.duration.as_secs_f64());
        invocation
    }

    async fn invoke_unrecorded(&self, hook: &Hook, options: &InvokeOptions) -> Invocation {
        let started = Instant::now();
        let started_at = options.clock.now();
        let reused_slot = match options.isolation {
            Isolation::ReuseInstance => self.take_idle(&options.tenant),
            Isolation::FreshInstance => None,
        };
        let reused_instance = reused_slot.is_some();
        let mut instance = match reused_slot {
            Some(instance) => instance,
            None => match self.instantiate(options).await {
                Ok(instance) => instance,
                Err(error) => {
                    return Invocation {
                        started_at,
                        result: Err(error),
                        logs: Vec::new(),
                        dropped_log_records: 0,
                        usage: Usage { duration: started.elapsed(), ..Usage::default() },
                        reused_instance: false,
                    }
                }
            },
        };

        let limits = options.limits;
        prepare(&mut instance.store, options, started_at, self.memory_limit(options));
        let outcome = tokio::time::timeout(limits.time, call(&mut instance, hook, options)).await;
        let result = classify(outcome, hook.contact(), &instance.store, &limits);

        let state = instance.store.data_mut();
        let logs = std::mem::take(&mut state.logs.records);
        let dropped_log_records = state.logs.dropped;
        let usage = Usage {
            fuel: limits.fuel.saturating_sub(instance.store.get_fuel().unwrap_or(0)),
            peak_memory_bytes: instance.store.data().memory.peak,
            duration: started.elapsed(),
            http_calls: instance.store.data().http_calls,
        };
        if result.is_ok() && options.isolation == Isolation::ReuseInstance {
            self.keep_idle(&options.tenant, instance);
        }
        Invocation { started_at, result, logs, dropped_log_records, usage, reused_instance }
    }

    /// [`Strategy::invoke`] as a task of its own. A batch's invocations
    /// awaited together from one task all run on the thread polling that
    /// task; spawned, they spread over every worker thread (the guest's
    /// work is CPU-bound and does not yield).
    pub async fn invoke_on_worker(self: Arc<Self>, hook: Hook, options: InvokeOptions) -> Invocation {
        let started = Instant::now();
        let started_at = options.clock.now();
        match tokio::spawn(async move { self.invoke(&hook, &options).await }).await {
            Ok(invocation) => invocation,
            Err(error) => Invocation {
                started_at,
                result: Err(InvokeError::Trap { message: format!("the invocation's task ended abnormally: {error}") }),
                logs: Vec::new(),
                dropped_log_records: 0,
                usage: Usage { duration: started.elapsed(), ..Usage::default() },
                reused_instance: false,
            },
        }
    }

    async fn instantiate(&self, options: &InvokeOptions) -> Result<Instance, InvokeError> {
        let (mut store, instance) = self.runtime.instantiate(&self.pre, options.clock.clone(), self.memory_limit(options)).await?;
        let hooks = self.hooks.load(&mut store, &instance).map_err(instantiate_error)?;
        if let Some(sources) = &self.sources {
            let memory_limit = self.memory_limit(options);
            sources.load(&mut store, &instance, &options.limits).await.map_err(|failure| failure.into_invoke_error(memory_limit))?;
        }
        Ok(Instance { store, hooks })
    }

    /// The invocation's memory limit, within what the pool's slots hold.
    fn memory_limit(&self, options: &InvokeOptions) -> usize {
        options.limits.memory_bytes.min(self.runtime.max_memory_bytes)
    }

    fn take_idle(&self, tenant: &str) -> Option<Instance> {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let instance = idle.get_mut(tenant).and_then(Vec::pop)?;
        self.runtime.idle_instances.fetch_sub(1, Ordering::Relaxed);
        Some(instance)
    }

    /// Keeps a healthy instance for reuse if both the per-tenant and the
    /// runtime-wide idle caps allow; otherwise it is dropped, freeing its slot.
    fn keep_idle(&self, tenant: &str, instance: Instance) {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = idle.entry(tenant.to_owned()).or_default();
        let runtime_wide = &self.runtime.idle_instances;
        if slot.len() < MAX_IDLE_PER_TENANT
            && runtime_wide
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < self.runtime.max_idle_instances).then_some(n + 1))
                .is_ok()
        {
            slot.push(instance);
        }
    }
}

impl Drop for Strategy {
    fn drop(&mut self) {
        let idle = self.idle.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count: usize = idle.values().map(Vec::len).sum();
        self.runtime.idle_instances.fetch_sub(count, Ordering::Relaxed);
    }
}

pub(crate) fn ticks(time: Duration) -> u64 {
    (time.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1
}

pub(crate) fn instantiate_error(error: wasmtime::Error) -> InvokeError {
    InvokeError::Instantiate { message: format!("{error:#}") }
}

/// Resets per-invocation state; a reused store starts each call afresh.
fn prepare(store: &mut Store<HostState>, options: &InvokeOptions, started_at: chrono::DateTime<chrono::Utc>, memory_limit: usize) {
    let limits = options.limits;
    let state = store.data_mut();
    let current = state.memory.peak;
    state.memory.reset(memory_limit, current);
    state.logs.reset(limits.log_bytes);
    state.http_policy = options.http.clone();
    state.credentials = options.credentials.clone();
    state.http_calls = 0;
    state.clock.set(Arc::new(VirtualClock::new(started_at)));
    // Fuel can only fail to be set when fuel is disabled, which it never is.
    let _ = store.set_fuel(limits.fuel);
    store.set_epoch_deadline(ticks(limits.time));
}

type GuestResult = Result<Option<bindings::types::ReturnedContact>, bindings::types::StrategyError>;

async fn call(instance: &mut Instance, hook: &Hook, options: &InvokeOptions) -> wasmtime::Result<GuestResult> {
    let hooks = &instance.hooks;
    let store = &mut instance.store;
    let campaign = convert::campaign(&options.campaign);
    Ok(match hook {
        Hook::DataLoad { contact, existing } => hooks
            .call_data_load(store, &campaign, &convert::contact(contact), existing.as_ref().map(convert::contact).as_ref())
            .await?
            .map(Some),
        Hook::Aggregation { contact, session_results } => hooks
            .call_aggregation(
                store,
                &campaign,
                &convert::contact(contact),
                session_results.as_ref().map(convert::session_results).as_ref(),
            )
            .await?
            .map(Some),
        Hook::ContactAnswer { contact, message } => {
            hooks.call_contact_answer(store, &campaign, &convert::contact(contact), &convert::message(message)).await?
        }
    })
}

/// What the guest's call came to; `received` is the contact it was given,
/// whose communications a returned contact may keep by index.
fn classify(
    outcome: Result<wasmtime::Result<GuestResult>, tokio::time::error::Elapsed>,
    received: &Contact,
    store: &Store<HostState>,
    limits: &Limits,
) -> Result<Option<Contact>, InvokeError> {
    let memory = &store.data().memory;
    let time_limit = || InvokeError::TimeLimit { limit_ms: limits.time.as_millis() as u64 };
    let guest = match outcome {
        Err(_elapsed) => return Err(time_limit()),
        Ok(Err(trap)) => return Err(limit_breach(&trap, store, limits.fuel, limits.time)),
        Ok(Ok(guest)) => guest,
    };
    use bindings::types::StrategyError;
    match guest {
        Ok(None) => Ok(None),
        Ok(Some(contact)) => {
            let contact = convert::contact_back(contact, received)?;
            let size_bytes = json_size(&contact);
            if size_bytes > limits.output_bytes {
                return Err(InvokeError::OutputTooLarge { size_bytes, limit_bytes: limits.output_bytes });
            }
            Ok(Some(contact))
        }
        Err(StrategyError::Exception(raised)) => {
            let exception = PythonException {
                type_name: raised.type_name,
                message: raised.message,
                traceback: raised
                    .traceback
                    .into_iter()
                    .map(|f| Frame { file: f.file, line: f.line, function: f.function, source: f.source })
                    .collect(),
            };
            if memory.refused || is_out_of_memory(&exception.type_name, &exception.message) {
                Err(InvokeError::MemoryLimit { limit_bytes: memory.limit, exception: Some(exception) })
            } else {
                Err(InvokeError::Exception { exception })
            }
        }
        Err(StrategyError::MissingHook(message)) => Err(InvokeError::MissingHook { message }),
        Err(StrategyError::InvalidResult(message)) => Err(InvokeError::InvalidResult { message }),
    }
}

/// The size of a value's JSON form, counted as it is written rather than
/// kept: the output limit is checked on every invocation.
fn json_size(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value).map_or(usize::MAX, |()| count.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_json_size_counts_the_bytes_to_vec_writes() {
        let contact: Contact = serde_json::from_value(serde_json::json!({
            "object_id": "C-1", "external_id": "U-1", "name": "Zoë \"Z\" Ann",
            "parameters": {"amount": 12.5, "note": "line\nbreak"},
        }))
        .expect("a contact");
        let written = serde_json::to_vec(&contact).expect("serializes").len();
        assert_eq!(json_size(&contact), written);
    }
}
