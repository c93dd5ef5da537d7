//! `stratagem serve` and `stratagem tenant …`: the platform service and
//! its administration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use stratagem_api::{AppState, ConnectionLimits, StrategyService};
use std::time::Duration;

use stratagem_runtime::{BuildLimits, Builder, PythonLibrary, Runtime, RuntimeConfig};
use stratagem_domain::quota::Quotas;
use stratagem_engine::{BuildSlots, CancellationToken, Engine, EngineConfig, OutboundConfig, RateLimits};

use crate::config::Toolchain;
use stratagem_store::{Backend, SecretsKey, Store, TenantInfo, TenantStatus};

#[derive(Args)]
pub struct Database {
    /// Where the SQLite database, compiled artifacts and builds live.
    #[arg(long, env = "STRATAGEM_DATA_DIR", default_value = ".stratagem")]
    data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL; SQLite in the data directory otherwise.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// 64 hex digits sealing integration secrets; the same on every node.
    /// Without it, a key is created in the data directory.
    #[arg(long, env = "STRATAGEM_SECRETS_KEY", hide_env_values = true)]
    secrets_key: Option<String>,
}

impl Database {
    fn url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.sqlite_file().display()),
        }
    }

    fn sqlite_file(&self) -> PathBuf {
        self.data_dir.join("stratagem.db")
    }

    async fn open(&self) -> anyhow::Result<Store> {
        std::fs::create_dir_all(&self.data_dir).with_context(|| format!("creating {}", self.data_dir.display()))?;
        let url = self.url();
        let store = Store::connect(&url).await.with_context(|| format!("opening the database {}", redact(&url)))?;
        Ok(store.with_secrets_key(self.secrets_key()?))
    }

    fn secrets_key(&self) -> anyhow::Result<SecretsKey> {
        if let Some(text) = &self.secrets_key {
            return SecretsKey::from_hex(text).map_err(|error| anyhow::anyhow!("STRATAGEM_SECRETS_KEY: {error}"));
        }
        if self.database_url.is_some() {
            tracing::warn!("STRATAGEM_SECRETS_KEY is not set: using the data directory's key; every node sharing this database needs the same key");
        }
        let path = self.data_dir.join("secrets.key");
        match std::fs::read_to_string(&path) {
            Ok(text) => SecretsKey::from_hex(&text).map_err(|error| anyhow::anyhow!("{}: {error}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = SecretsKey::generate();
                write_private(&path, key.to_hex().as_bytes()).with_context(|| format!("creating {}", path.display()))?;
                Ok(key)
            }
            Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// Creates a file only its owner can read; fails if it exists, so two
/// processes starting at once cannot each write a different key.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    database: Database,
    /// The address the API, the web UI, webhooks and /metrics are served on.
    #[arg(long, env = "STRATAGEM_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// How often the campaign engine looks for due work, in milliseconds.
    #[arg(long, env = "STRATAGEM_ENGINE_TICK_MS", default_value_t = 1000)]
    engine_tick_ms: u64,
    /// How long a node holds claimed work before another node retries it.
    #[arg(long, env = "STRATAGEM_ENGINE_LEASE_SECS", default_value_t = 60)]
    engine_lease_secs: i64,
    /// Most sends per second per tenant and channel, shared by all nodes:
    /// CHANNEL=N,… (e.g. EMAIL_NOTIFICATION=10,TWILIO=5).
    #[arg(long, env = "STRATAGEM_RATE_LIMITS", default_value = "")]
    rate_limits: String,
    /// Minutes a conversation may go without a word from the contact
    /// before it ends and its results are extracted.
    #[arg(long, env = "STRATAGEM_SESSION_TIMEOUT_MINS", default_value_t = 24 * 60)]
    session_timeout_mins: i64,
    /// Days each strategy invocation's outcome, log, usage and kept input
    /// are kept (contact history, import reports, `strategy replay`).
    #[arg(long, env = "STRATAGEM_INVOCATION_RETENTION_DAYS", default_value_t = 14, value_parser = clap::value_parser!(u16).range(1..=3650))]
    invocation_retention_days: u16,
    /// Campaign engine loops this node runs at once (default: 2 on
    /// PostgreSQL, 1 on SQLite, which has one writer).
    #[arg(long, env = "STRATAGEM_ENGINE_LOOPS", value_parser = clap::value_parser!(u16).range(1..=64))]
    engine_loops: Option<u16>,
    /// Serve the web UI from this directory (a `make web` build of
    /// web/dist) instead of the one built into the binary: for UI
    /// development.
    #[arg(long, env = "STRATAGEM_WEB_DIR")]
    web_dir: Option<PathBuf>,
    /// On SIGTERM or SIGINT: how long requests, sends and imports in
    /// progress may take to finish before the process exits anyway (what
    /// is cut short then is retried through its lease). A second signal
    /// exits at once.
    #[arg(long, env = "STRATAGEM_SHUTDOWN_GRACE_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    shutdown_grace_secs: u64,
    /// Require `Authorization: Bearer <token>` to scrape /metrics (open
    /// when unset; its series carry no tenant data).
    #[arg(long, env = "STRATAGEM_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Requests per second each API key may send to this node (bursts of
    /// twice that); beyond it, 429 with Retry-After. 0 turns it off.
    #[arg(long, env = "STRATAGEM_API_RATE_LIMIT", default_value_t = 100)]
    api_rate_limit: u32,
    /// Test emails each tenant may send from the stage editor per minute,
    /// on this node (all at once if it likes); beyond it, 429 with
    /// Retry-After.
    #[arg(long, env = "STRATAGEM_TEST_EMAILS_PER_MINUTE", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    test_emails_per_minute: u32,
    /// Contacts a tenant may hold across its campaigns, unless `stratagem
    /// tenant quota` sets its own. 0: unlimited.
    #[arg(long, env = "STRATAGEM_QUOTA_CONTACTS", default_value_t = 0)]
    quota_contacts: u64,
    /// Campaigns a tenant may have, unless `stratagem tenant quota` sets
    /// its own. 0: unlimited.
    #[arg(long, env = "STRATAGEM_QUOTA_CAMPAIGNS", default_value_t = 0)]
    quota_campaigns: u64,
    /// Strategy fuel a tenant may use per UTC day, unless `stratagem tenant
    /// quota` sets its own; past it, imports are refused and AGGREGATION
    /// waits for the next day. 0: unlimited.
    #[arg(long, env = "STRATAGEM_QUOTA_FUEL_PER_DAY", default_value_t = 0)]
    quota_fuel_per_day: u64,
    /// Outbound HTTP calls a tenant's strategies may make per UTC day, as
    /// for fuel. 0: unlimited.
    #[arg(long, env = "STRATAGEM_QUOTA_HTTP_CALLS_PER_DAY", default_value_t = 0)]
    quota_http_calls_per_day: u64,
    /// MiB of data a tenant may store (contacts, communications, strategy
    /// versions, kept invocations); past it, imports and strategy uploads
    /// are refused. 0: unlimited.
    #[arg(long, env = "STRATAGEM_QUOTA_STORAGE_MIB", default_value_t = 0)]
    quota_storage_mib: u64,
    #[command(flatten)]
    builds: BuildArgs,
    #[command(flatten)]
    toolchain: Toolchain,
    #[command(flatten)]
    outbound: OutboundArgs,
}

/// Where outbound connections may go, and where webhooks come back.
#[derive(Args)]
pub struct OutboundArgs {
    /// Let integrations and strategies reach private and local addresses
    /// (on-premise endpoints on a private network; tests).
    #[arg(long, env = "STRATAGEM_ALLOW_PRIVATE_ENDPOINTS", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    allow_private_endpoints: bool,
    /// The service's public base URL, as providers reach its webhooks.
    #[arg(long, env = "STRATAGEM_PUBLIC_URL", default_value = OutboundConfig::DEFAULT_PUBLIC_URL)]
    public_url: String,
}

impl OutboundArgs {
    fn config(&self) -> OutboundConfig {
        OutboundConfig { allow_private_endpoints: self.allow_private_endpoints, public_url: self.public_url.clone().into() }
    }
}

/// Strategy builds run tenant code: each is confined and bounded.
#[derive(Args)]
pub struct BuildArgs {
    /// Strategy builds this node runs at once.
    #[arg(long, env = "STRATAGEM_BUILD_SLOTS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    build_slots: u16,
    /// Strategy builds one tenant runs at once, over all nodes.
    #[arg(long, env = "STRATAGEM_BUILDS_PER_TENANT", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    builds_per_tenant: u16,
    /// Memory one build may use, in MiB.
    #[arg(long, env = "STRATAGEM_BUILD_MEMORY_MIB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(512..=65536))]
    build_memory_mib: u64,
    /// CPU time one build may use, in seconds.
    #[arg(long, env = "STRATAGEM_BUILD_CPU_SECS", default_value_t = 90, value_parser = clap::value_parser!(u64).range(10..=3600))]
    build_cpu_secs: u64,
    /// Wall-clock time after which a build is killed, in seconds.
    #[arg(long, env = "STRATAGEM_BUILD_TIMEOUT_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(10..=3600))]
    build_timeout_secs: u64,
    /// Compiled strategy code kept loaded in memory, in MiB (least
    /// recently used strategies are dropped past it).
    #[arg(long, env = "STRATAGEM_LOADED_STRATEGIES_MIB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(64..=1048576))]
    loaded_strategies_mib: u64,
    /// Built components kept on disk for reuse, in MiB (oldest dropped first).
    #[arg(long, env = "STRATAGEM_BUILD_CACHE_MIB", default_value_t = 2048, value_parser = clap::value_parser!(u64).range(64..=1048576))]
    build_cache_mib: u64,
}

impl BuildArgs {
    fn service(&self, runtime: Arc<Runtime>, builder: Builder) -> StrategyService {
        let limits = BuildLimits {
            timeout: Duration::from_secs(self.build_timeout_secs),
            cpu: Duration::from_secs(self.build_cpu_secs),
            memory_bytes: self.build_memory_mib << 20,
        };
        let builder = builder.with_limits(limits).with_cache_limit(self.build_cache_mib << 20);
        StrategyService::new(runtime, builder)
            .with_build_slots(BuildSlots { per_node: self.build_slots.into(), per_tenant: self.builds_per_tenant.into() })
            .with_max_loaded_bytes((self.loaded_strategies_mib << 20) as usize)
    }
}

/// A tenant on the command line: its id, or its name when exactly one
/// tenant that is not deleted has it.
#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its first API key (shown only once).
    Create {
        name: String,
        #[command(flatten)]
        database: Database,
    },
    /// List every tenant: id, status (active, disabled, deleted), active
    /// keys, creation time and name.
    List {
        #[command(flatten)]
        database: Database,
    },
    /// Mint API keys for a tenant.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Show a tenant's quotas, or set them: a number, 0 for unlimited, or
    /// `default` for the node's (`serve --quota-…`).
    Quota {
        /// The tenant's id, or its name if no other tenant has it.
        tenant: String,
        /// Contacts across its campaigns.
        #[arg(long)]
        contacts: Option<QuotaValue>,
        #[arg(long)]
        campaigns: Option<QuotaValue>,
        /// Strategy fuel per UTC day.
        #[arg(long)]
        fuel_per_day: Option<QuotaValue>,
        /// Outbound HTTP calls of strategies per UTC day.
        #[arg(long)]
        http_calls_per_day: Option<QuotaValue>,
        /// MiB of stored data.
        #[arg(long)]
        storage_mib: Option<QuotaValue>,
        #[command(flatten)]
        database: Database,
    },
    /// What a tenant consumed per UTC day (invocations and fuel by hook,
    /// imports and rows, messages by channel, LLM tokens) and its storage.
    Usage {
        /// The tenant's id, or its name if no other tenant has it.
        tenant: String,
        /// First UTC day (YYYY-MM-DD); 29 days before --to if left out.
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Last UTC day, included; today if left out.
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
        /// Print `day,metric,dimension,value` lines instead of a table.
        #[arg(long)]
        csv: bool,
        #[command(flatten)]
        database: Database,
    },
    /// Refuse the tenant's API keys (403) until it is enabled again. Its
    /// data, keys and campaigns are kept as they are; RUNNING campaigns
    /// keep running.
    Disable {
        /// The tenant's id, or its name if no other tenant has it.
        tenant: String,
        #[command(flatten)]
        database: Database,
    },
    /// Accept a disabled tenant's API keys again.
    Enable {
        /// The tenant's id, or its name if no other tenant has it.
        tenant: String,
        #[command(flatten)]
        database: Database,
    },
    /// Delete a tenant: revoke all its keys (refused with 401 from then
    /// on), stop its RUNNING campaigns and Deep Analysis runs. Its data is
    /// kept in the database, not erased. Final: a deleted tenant cannot be
    /// enabled or get new keys. Needs --yes.
    Delete {
        /// The tenant's id, or its name if no other tenant has it.
        tenant: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        database: Database,
    },
}

/// A quota as the operator writes it: a number (0: unlimited) or `default`.
#[derive(Debug, Clone, Copy)]
pub struct QuotaValue(Option<i64>);

impl std::str::FromStr for QuotaValue {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.eq_ignore_ascii_case("default") {
            return Ok(QuotaValue(None));
        }
        text.parse::<u64>()
            .ok()
            .and_then(|limit| i64::try_from(limit).ok())
            .map(|limit| QuotaValue(Some(limit)))
            .ok_or_else(|| format!("`{text}` is not a quota: write a whole number (0 for unlimited) or `default`"))
    }
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create an API key for a tenant and print it (shown only once).
    Create {
        /// The tenant's id, or its name if no other tenant has it.
        tenant: String,
        /// What the key is for, shown in the tenant's key list.
        #[arg(long, default_value = "operator key")]
        name: String,
        #[command(flatten)]
        database: Database,
    },
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let limits = RateLimits::parse(&args.rate_limits).map_err(|error| anyhow::anyhow!("STRATAGEM_RATE_LIMITS: {error}"))?;
    let store = args.database.open().await?;
    let data_dir: &Path = &args.database.data_dir;
    let outbound = args.outbound.config();
    // A build cache given by flag or variable can be shared with other
    // tools (the test suite shares one); the data directory's own otherwise.
    let builds = data_dir.join("builds");
    let mut builder = args.toolchain.builder(Some(&builds));
    // Said once, here, rather than by every build that would fail.
    let toolchain = builder.toolchain().await;
    let mut python_library = None;
    match &toolchain {
        Ok((path, version)) => {
            eprintln!("strategy builds: {version} ({})", path.display());
            (builder, python_library) = args.toolchain.builder_and_library(Some(&builds)).await;
        }
        Err(error) => eprintln!("strategy builds are OFF: {error}. Python uploads are refused until then; prebuilt components still work."),
    }
    let runtime = Arc::new(Runtime::new(RuntimeConfig {
        cache_dir: data_dir.join("cache"),
        egress: outbound.egress(),
        python_library,
        ..RuntimeConfig::default()
    })?);
    let default_window = EngineConfig::default().default_window;
    let metrics = stratagem_api::install_metrics(args.metrics_token.clone(), default_window).map_err(anyhow::Error::msg)?;
    let shutdown = CancellationToken::new();
    let limit = |value: u64| (value > 0).then_some(value);
    let quotas = Quotas {
        contacts: limit(args.quota_contacts),
        campaigns: limit(args.quota_campaigns),
        fuel_per_day: limit(args.quota_fuel_per_day),
        http_calls_per_day: limit(args.quota_http_calls_per_day),
        storage_mib: limit(args.quota_storage_mib),
    };
    let mut state = AppState::new(store, Arc::new(args.builds.service(runtime, builder)))
        .with_outbound(outbound.clone())
        .with_metrics(metrics)
        .with_api_rate_limit(args.api_rate_limit)
        .with_test_email_limit(args.test_emails_per_minute)
        .with_quotas(quotas)
        .with_shutdown(shutdown.clone());
    if let Err(error) = toolchain {
        state = state.without_toolchain(error);
    }
    if let Some(dir) = &args.web_dir {
        state = state.with_web_dir(dir.clone());
    }
    // Before the first request: on SQLite every import still running was
    // left by a process that stopped; on PostgreSQL, those whose node's
    // heartbeat lapsed (and, from then on, every sweep).
    stratagem_api::recover_imports(state.clone()).await.context("marking interrupted imports")?;
    state.strategies.spawn_build_recovery(state.store.clone());
    let clock = Arc::new(stratagem_runtime::SystemClock);
    let config = EngineConfig {
        tick_every: std::time::Duration::from_millis(args.engine_tick_ms),
        lease: chrono::Duration::seconds(args.engine_lease_secs.max(1)),
        session_timeout: chrono::Duration::minutes(args.session_timeout_mins.max(1)),
        invocation_retention: chrono::Duration::days(i64::from(args.invocation_retention_days)),
        loops: match (args.engine_loops, state.store.backend()) {
            (Some(loops), _) => usize::from(loops),
            (None, Backend::Postgres) => 2,
            (None, Backend::Sqlite) => 1,
        },
        outbound,
        default_window,
        quotas,
        ..EngineConfig::default()
    };
    let engine = Arc::new(Engine::new(state.store.clone(), state.strategies.clone(), clock, config).with_rate_limits(limits)).spawn(shutdown.clone());
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    eprintln!("stratagem serving on http://{} (API docs: /api/docs)", listener.local_addr()?);

    let grace = Duration::from_secs(args.shutdown_grace_secs);
    let deadline = Arc::new(std::sync::OnceLock::new());
    tokio::spawn(stop_on_signal(shutdown.clone(), grace, deadline.clone()));
    let limits = ConnectionLimits { shutdown_grace: grace, ..ConnectionLimits::default() };
    stratagem_api::serve(listener, stratagem_api::app(state.clone()), limits, shutdown.cancelled()).await?;
    // The engine's loops and the imports saw the signal with the listener:
    // they have been finishing meanwhile, within the same grace.
    let deadline = deadline.get().copied().unwrap_or_else(|| tokio::time::Instant::now() + grace);
    let finished = tokio::time::timeout_at(deadline, async {
        state.drain().await;
        let _ = engine.await;
    })
    .await;
    match finished {
        Ok(()) => eprintln!("stratagem stopped: in-flight work finished"),
        Err(_) => eprintln!("stratagem stopped after {}s: work still in progress is retried by the next node through its lease", grace.as_secs()),
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits for SIGTERM or SIGINT, then cancels `shutdown` and sets the
/// deadline the work in progress has; a second signal exits at once.
async fn stop_on_signal(shutdown: CancellationToken, grace: Duration, deadline: Arc<std::sync::OnceLock<tokio::time::Instant>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot listen for SIGTERM and SIGINT: the process stops only when killed");
        return;
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    let _ = deadline.set(tokio::time::Instant::now() + grace);
    eprintln!(
        "stratagem stopping: no new connections, work or imports; finishing what is in progress (up to {}s; signal again to exit now)",
        grace.as_secs()
    );
    shutdown.cancel();
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    eprintln!("stratagem stopping now: work still in progress is retried by the next node through its lease");
    std::process::exit(1);
}

/// What `stratagem doctor` looks at: the settings `serve` would use.
#[derive(Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    database: Database,
    #[command(flatten)]
    toolchain: Toolchain,
    /// As `serve --web-dir`.
    #[arg(long, env = "STRATAGEM_WEB_DIR")]
    web_dir: Option<PathBuf>,
}

/// Prints what `serve` would find — toolchain, database, data directory,
/// secrets key, web UI — changing nothing. Exit 0 when all is in order, 1
/// when something is missing (each line says how to fix it).
pub async fn doctor(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let mut problems = 0;
    let mut report = |what: &str, outcome: Result<String, String>| {
        match outcome {
            Ok(found) => println!("ok       {what:<12} {found}"),
            Err(missing) => {
                problems += 1;
                println!("MISSING  {what:<12} {missing}");
            }
        }
    };
    let builder = args.toolchain.builder(None);
    let toolchain = builder.toolchain().await;
    let found = toolchain.is_ok();
    report("toolchain", toolchain.map(|(path, version)| format!("{version} ({})", path.display())));
    if found {
        let builds = args.database.data_dir.join("builds");
        let library = args.toolchain.library_parent(Some(&builds)).and_then(|under| PythonLibrary::find(&args.toolchain.componentize_py(), &under));
        report("python lib", match library {
            Ok(Some(library)) if library.zoneinfo().is_some() => Ok(format!("{} (standard library and time zones)", library.stdlib().display())),
            Ok(Some(library)) => Err(format!("{} has no time zone database: `pip install tzdata` where componentize-py is (`make setup` does)", library.stdlib().display())),
            Ok(None) => Ok("not prepared yet: `serve` copies it out of componentize-py at start-up, once".to_owned()),
            Err(error) => Err(error),
        });
    }

    let data_dir = std::path::absolute(&args.database.data_dir).unwrap_or_else(|_| args.database.data_dir.clone());
    report("data dir", match std::fs::metadata(&data_dir) {
        Ok(meta) if meta.is_dir() && !meta.permissions().readonly() => Ok(format!("{} (writable)", data_dir.display())),
        Ok(_) => Err(format!("{} is not a writable directory; point --data-dir (STRATAGEM_DATA_DIR) at one", data_dir.display())),
        Err(_) => Ok(format!("{} (not there yet: `serve` creates it)", data_dir.display())),
    });

    let url = args.database.url();
    let database = if args.database.database_url.is_none() && !args.database.sqlite_file().is_file() {
        Ok(format!("{} (not there yet: `serve` creates it)", redact(&url)))
    } else {
        match Store::connect_unmigrated(&url).await {
            Err(error) => Err(format!("{}: cannot connect ({error}); check DATABASE_URL and that the server runs", redact(&url))),
            Ok(store) => match store.readiness().await {
                Ok(()) => Ok(format!("{} (reachable, migrations of this release applied)", redact(&url))),
                // Missing migrations are applied by `serve` at start-up.
                Err(problem) if problem.contains("lacks migration") => Ok(format!("{}: {problem}", redact(&url))),
                Err(problem) => Err(format!("{}: {problem}", redact(&url))),
            },
        }
    };
    report("database", database);

    let key_file = args.database.data_dir.join("secrets.key");
    report("secrets key", match (&args.database.secrets_key, args.database.database_url.is_some()) {
        (Some(text), _) => SecretsKey::from_hex(text).map(|_| "from STRATAGEM_SECRETS_KEY".to_owned()).map_err(|error| format!("STRATAGEM_SECRETS_KEY: {error}")),
        (None, shared) => match std::fs::read_to_string(&key_file) {
            Ok(text) => SecretsKey::from_hex(&text)
                .map(|_| {
                    let note = if shared { "; every node on this database needs the same key: set STRATAGEM_SECRETS_KEY" } else { "" };
                    format!("{}{note}", key_file.display())
                })
                .map_err(|error| format!("{}: {error}", key_file.display())),
            Err(_) => Ok(format!("none yet: `serve` creates {}", key_file.display())),
        },
    });

    report("web UI", match &args.web_dir {
        Some(dir) if dir.join("index.html").is_file() => Ok(format!("served from {}", dir.display())),
        Some(dir) => Err(format!("{} has no index.html: build it with `make web`, or unset STRATAGEM_WEB_DIR to serve the built-in UI", dir.display())),
        None if stratagem_api::web::embedded() => Ok("built into this binary".to_owned()),
        None => Err("this binary was built without the UI: run `make web`, then rebuild (`make run` does both)".to_owned()),
    });
    Ok(if problems == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub async fn tenant(command: TenantCommand) -> anyhow::Result<ExitCode> {
    match command {
        TenantCommand::Create { name, database } => {
            let name = name.trim();
            anyhow::ensure!(!name.is_empty(), "the tenant's name must not be empty");
            let store = database.open().await?;
            let (tenant, key) = store.tenants().create_tenant(name).await?;
            print_key(&tenant, &key.key);
            Ok(ExitCode::SUCCESS)
        }
        TenantCommand::List { database } => {
            let store = database.open().await?;
            let tenants = store.tenants().list_tenants().await?;
            if tenants.is_empty() {
                eprintln!("no tenants yet: `stratagem tenant create NAME` creates one");
                return Ok(ExitCode::SUCCESS);
            }
            println!("{:<36}  {:<8}  {:>4}  {:<20}  NAME", "ID", "STATUS", "KEYS", "CREATED");
            for tenant in tenants {
                println!(
                    "{:<36}  {:<8}  {:>4}  {:<20}  {}",
                    tenant.id,
                    tenant.status.as_str(),
                    tenant.active_keys,
                    tenant.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    tenant.name
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TenantCommand::Key(KeyCommand::Create { tenant, name, database }) => {
            let store = database.open().await?;
            let tenant = find_tenant(&store, &tenant).await?;
            anyhow::ensure!(tenant.status != TenantStatus::Deleted, "tenant {} is deleted; a deleted tenant gets no new keys", describe(&tenant));
            let key = store.tenants().create_api_key(&tenant.id, name.trim()).await?;
            print_key(&tenant.id, &key.key);
            if tenant.status == TenantStatus::Disabled {
                eprintln!("The tenant is disabled: the key works once `stratagem tenant enable {}` has run.", tenant.id);
            }
            Ok(ExitCode::SUCCESS)
        }
        TenantCommand::Quota { tenant, contacts, campaigns, fuel_per_day, http_calls_per_day, storage_mib, database } => {
            let store = database.open().await?;
            let tenant = find_tenant(&store, &tenant).await?;
            let mut settings = store.tenants().quota_settings(&tenant.id).await?;
            let changes = [
                (contacts, &mut settings.contacts),
                (campaigns, &mut settings.campaigns),
                (fuel_per_day, &mut settings.fuel_per_day),
                (http_calls_per_day, &mut settings.http_calls_per_day),
                (storage_mib, &mut settings.storage_mib),
            ];
            let mut changed = false;
            for (given, setting) in changes {
                if let Some(QuotaValue(value)) = given {
                    *setting = value;
                    changed = true;
                }
            }
            if changed {
                store.tenants().set_quota_settings(&tenant.id, settings).await?;
            }
            let shown = |value: Option<i64>| match value {
                None => "the node's default (serve --quota-…)".to_owned(),
                Some(limit) if limit <= 0 => "unlimited".to_owned(),
                Some(limit) => limit.to_string(),
            };
            println!("quotas of {}:", describe(&tenant));
            println!("  contacts:           {}", shown(settings.contacts));
            println!("  campaigns:          {}", shown(settings.campaigns));
            println!("  fuel per day:       {}", shown(settings.fuel_per_day));
            println!("  HTTP calls per day: {}", shown(settings.http_calls_per_day));
            println!("  storage (MiB):      {}", shown(settings.storage_mib));
            Ok(ExitCode::SUCCESS)
        }
        TenantCommand::Usage { tenant, from, to, csv, database } => {
            let (from, to) = stratagem_domain::usage::span(from, to, chrono::Utc::now().date_naive()).map_err(anyhow::Error::msg)?;
            let store = database.open().await?;
            let tenant = find_tenant(&store, &tenant).await?;
            let report = store.usage().report(&tenant.id, from, to).await?;
            if csv {
                print!("{}", report.to_csv());
                return Ok(ExitCode::SUCCESS);
            }
            println!("usage of {} from {from} to {to} (UTC days)", describe(&tenant));
            println!("{:<10}  {:<12}  {:<20}  {:>14}", "day", "metric", "dimension", "value");
            for row in &report.rows {
                println!("{:<10}  {:<12}  {:<20}  {:>14}", row.day, row.metric, row.dimension, row.value);
            }
            let storage = report.storage;
            println!(
                "storage now: {} campaign(s), {} contact(s), {} communication(s), {} strategy version(s), {} byte(s) of components",
                storage.campaigns, storage.contacts, storage.communications, storage.strategy_versions, storage.component_bytes
            );
            Ok(ExitCode::SUCCESS)
        }
        TenantCommand::Disable { tenant, database } => set_disabled(&database, &tenant, true).await,
        TenantCommand::Enable { tenant, database } => set_disabled(&database, &tenant, false).await,
        TenantCommand::Delete { tenant, yes, database } => {
            let store = database.open().await?;
            let tenant = find_tenant(&store, &tenant).await?;
            anyhow::ensure!(tenant.status != TenantStatus::Deleted, "tenant {} is deleted already", describe(&tenant));
            if !yes {
                anyhow::bail!(
                    "deleting tenant {} revokes its {} active key(s) and stops its running campaigns and analyses; \
                     its data is kept. Run again with --yes to delete it",
                    describe(&tenant),
                    tenant.active_keys
                );
            }
            let deleted = store.tenants().delete_tenant(&tenant.id).await?;
            println!(
                "deleted tenant {}: {} key(s) revoked, {} running campaign(s) and {} analysis run(s) stopped; its data is kept in the database",
                describe(&tenant),
                deleted.revoked_keys,
                deleted.stopped_campaigns,
                deleted.stopped_analyses
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_key(tenant: &str, key: &str) {
    println!("tenant: {tenant}");
    println!("api key: {key}");
    eprintln!("Keep the key now: it is shown only once. Use it as `Authorization: Bearer <key>`.");
}

/// `Acme (ten_…)`.
fn describe(tenant: &TenantInfo) -> String {
    format!("{} ({})", tenant.name, tenant.id)
}

/// The tenant `reference` names: by id, else by a name no other tenant
/// that is not deleted has.
async fn find_tenant(store: &Store, reference: &str) -> anyhow::Result<TenantInfo> {
    let reference = reference.trim();
    let mut found = store.tenants().find_tenants(reference).await?;
    match found.len() {
        0 => anyhow::bail!("no tenant has the id or name `{reference}`; `stratagem tenant list` shows them"),
        1 => Ok(found.remove(0)),
        _ => {
            let ids: Vec<&str> = found.iter().map(|tenant| tenant.id.as_str()).collect();
            anyhow::bail!("{} tenants are named `{reference}`; name one by its id: {}", found.len(), ids.join(", "))
        }
    }
}

async fn set_disabled(database: &Database, reference: &str, disabled: bool) -> anyhow::Result<ExitCode> {
    let store = database.open().await?;
    let tenant = find_tenant(&store, reference).await?;
    anyhow::ensure!(
        tenant.status != TenantStatus::Deleted,
        "tenant {} is deleted; a deleted tenant cannot be {}",
        describe(&tenant),
        if disabled { "disabled" } else { "enabled" }
    );
    let changed = store.tenants().set_tenant_disabled(&tenant.id, disabled).await?;
    let state = if disabled { "disabled" } else { "enabled" };
    match (changed, disabled) {
        (false, _) => println!("tenant {} is {state} already", describe(&tenant)),
        (true, true) => println!("disabled tenant {}: its API keys are refused (403) until `stratagem tenant enable {}`", describe(&tenant), tenant.id),
        (true, false) => println!("enabled tenant {}: its API keys work again", describe(&tenant)),
    }
    Ok(ExitCode::SUCCESS)
}
