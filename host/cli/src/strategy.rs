//! `stratagem strategy build | run | replay`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::{Args, Subcommand, ValueEnum};
use serde::de::DeserializeOwned;
use stratagem_domain::{CampaignContext, Contact, JsonMap, Message};

use crate::config::Toolchain;
use stratagem_runtime::{
    Builder, Clock, EgressPolicy, Hook, HttpPolicy, InvokeOptions, Isolation, Limits, Runtime, RuntimeConfig, Strategy, StrategySource,
    SystemClock, VirtualClock,
};

#[derive(Subcommand)]
pub enum Command {
    /// Compile a Python strategy (a .py file, or a directory with main.py)
    /// into a WebAssembly component.
    Build {
        source: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        toolchain: Toolchain,
    },
    /// Run one hook of a strategy on a contact and print the result.
    Run(RunArgs),
    /// Run a kept invocation again (fetched from the server) with the
    /// time it saw and its limits: unchanged, says whether its result is
    /// reproduced; with --source, how the edited strategy's result differs.
    Replay(crate::replay::ReplayArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum HookName {
    DataLoad,
    Aggregation,
    ContactAnswer,
}

#[derive(Args)]
pub struct RunArgs {
    /// A built component (.wasm), or Python source to build first.
    strategy: PathBuf,
    #[arg(long, value_enum)]
    hook: HookName,
    /// The contact, as JSON.
    #[arg(long)]
    contact: PathBuf,
    /// data-load: the stored contact with the same object_id.
    #[arg(long)]
    existing: Option<PathBuf>,
    /// aggregation: the session results object, e.g. {"OutcomeStatus": "NO_RESPONSE"}.
    #[arg(long)]
    session_results: Option<PathBuf>,
    /// contact-answer: the agent message.
    #[arg(long)]
    message: Option<PathBuf>,
    /// The campaign context (id, name, result_fields), as JSON.
    #[arg(long)]
    campaign: Option<PathBuf>,
    /// Fix the strategy's clock (RFC 3339), for reproducible output.
    #[arg(long)]
    now: Option<chrono::DateTime<chrono::Utc>>,
    /// Host the strategy may call over HTTP; repeatable.
    #[arg(long = "allow-host")]
    allow_hosts: Vec<String>,
    /// Let the strategy reach private and local addresses (a server on
    /// this machine, for instance).
    #[arg(long, env = "STRATAGEM_ALLOW_PRIVATE_ENDPOINTS", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    allow_private_endpoints: bool,
    #[arg(long, default_value_t = Limits::default().fuel)]
    fuel: u64,
    #[arg(long, default_value_t = Limits::default().time.as_millis() as u64)]
    time_limit_ms: u64,
    #[arg(long, default_value_t = Limits::default().memory_bytes >> 20)]
    memory_mib: usize,
    #[arg(long, default_value_t = Limits::default().output_bytes)]
    output_bytes: usize,
    #[arg(long, default_value_t = HttpPolicy::default().timeout.as_millis() as u64)]
    http_timeout_ms: u64,
    /// Where compiled artifacts are cached.
    #[arg(long, env = "STRATAGEM_CACHE_DIR", default_value = ".stratagem/cache")]
    cache_dir: PathBuf,
    /// Print one JSON document (result, logs, usage) instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    toolchain: Toolchain,
}

impl Command {
    pub async fn run(self) -> ExitCode {
        let outcome = match self {
            Command::Build { source, output, toolchain } => build(&source, &output, &toolchain).await,
            Command::Run(args) => run(args).await,
            Command::Replay(args) => crate::replay::replay(args).await,
        };
        outcome.unwrap_or_else(|error| {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        })
    }
}

pub(crate) async fn build_source(source: &StrategySource, builder: &Builder) -> anyhow::Result<Vec<u8>> {
    builder.build(source).await.map_err(|error| anyhow!("{error}"))
}

/// Sources as the service runs them: loaded into the platform's component
/// (built and compiled once per toolchain, then cached), with what a build
/// would report (a syntax error, an exception at top level) as the error.
pub(crate) async fn load_source(runtime: &Arc<Runtime>, builder: &Builder, source: &StrategySource) -> anyhow::Result<Strategy> {
    let platform = runtime.load_platform(&builder.build_platform().await.map_err(|error| anyhow!("{error}"))?)?;
    platform.try_load(source, Limits::default()).await.map_err(|error| anyhow!("{error}"))?;
    Ok(platform.strategy(source)?)
}

/// A runtime for one local run, its slots sized for `memory_bytes`.
pub(crate) fn local_runtime(
    cache_dir: PathBuf,
    memory_bytes: usize,
    allow_private_endpoints: bool,
    python_library: Option<stratagem_runtime::PythonLibrary>,
) -> anyhow::Result<Arc<Runtime>> {
    Ok(Arc::new(Runtime::new(RuntimeConfig {
        cache_dir,
        max_instances: 4,
        max_memory_bytes: memory_bytes.max(64 << 20),
        egress: EgressPolicy { allow_private_endpoints },
        python_library,
        ..RuntimeConfig::default()
    })?))
}

async fn build(source: &Path, output: &Path, toolchain: &Toolchain) -> anyhow::Result<ExitCode> {
    let (builder, _) = toolchain.builder_and_library(None).await;
    let bytes = build_source(&StrategySource::from_path(source)?, &builder).await?;
    std::fs::write(output, &bytes).with_context(|| format!("writing {}", output.display()))?;
    eprintln!("built {} ({} bytes)", output.display(), bytes.len());
    Ok(ExitCode::SUCCESS)
}

fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).map_err(|error| {
        // serde_json appends " at line L column C"; lead with it instead.
        let message = error.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
        anyhow!("{}, line {}, column {}: {message}", path.display(), error.line(), error.column())
    })
}

fn required<'a>(value: &'a Option<PathBuf>, flag: &str, hook: &str) -> anyhow::Result<&'a Path> {
    value.as_deref().ok_or_else(|| anyhow!("--hook {hook} needs {flag}"))
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let contact: Contact = read_json(&args.contact)?;
    let hook = match args.hook {
        HookName::DataLoad => Hook::DataLoad {
            contact,
            existing: args.existing.as_deref().map(read_json).transpose()?,
        },
        HookName::Aggregation => Hook::Aggregation {
            contact,
            session_results: args.session_results.as_deref().map(read_json::<JsonMap>).transpose()?,
        },
        HookName::ContactAnswer => Hook::ContactAnswer {
            contact,
            message: read_json::<Message>(required(&args.message, "--message", "contact-answer")?)?,
        },
    };
    let campaign: CampaignContext = match &args.campaign {
        Some(path) => read_json(path)?,
        None => CampaignContext { id: "local".into(), name: "local run".into(), result_fields: Vec::new() },
    };

    let (builder, python_library) = args.toolchain.builder_and_library(None).await;
    let runtime = local_runtime(args.cache_dir.clone(), args.memory_mib << 20, args.allow_private_endpoints, python_library)?;
    let strategy = if args.strategy.extension().is_some_and(|ext| ext == "wasm") {
        let component = std::fs::read(&args.strategy).with_context(|| format!("reading {}", args.strategy.display()))?;
        runtime.load(&component)?.0
    } else {
        load_source(&runtime, &builder, &StrategySource::from_path(&args.strategy)?).await?
    };
    let clock: Arc<dyn Clock> = match args.now {
        Some(now) => Arc::new(VirtualClock::new(now)),
        None => Arc::new(SystemClock),
    };
    let options = InvokeOptions {
        tenant: "local".into(),
        campaign,
        limits: Limits {
            fuel: args.fuel,
            time: Duration::from_millis(args.time_limit_ms),
            memory_bytes: args.memory_mib << 20,
            output_bytes: args.output_bytes,
            ..Limits::default()
        },
        isolation: Isolation::FreshInstance,
        credentials: None,
        http: HttpPolicy {
            allowed_hosts: args.allow_hosts.clone(),
            timeout: Duration::from_millis(args.http_timeout_ms),
            ..HttpPolicy::default()
        },
        clock,
    };
    let invocation = strategy.invoke(&hook, &options).await;

    if args.json {
        println!("{}", serde_json::to_string_pretty(&invocation)?);
    } else {
        for record in &invocation.logs {
            eprintln!("[{:?}] {}: {}", record.level, record.logger, record.message);
        }
        if invocation.dropped_log_records > 0 {
            eprintln!("({} log records dropped: log limit reached)", invocation.dropped_log_records);
        }
        let usage = invocation.usage;
        eprintln!(
            "fuel used: {}, peak memory: {:.1} MiB, duration: {:.1} ms",
            usage.fuel,
            usage.peak_memory_bytes as f64 / (1 << 20) as f64,
            usage.duration.as_secs_f64() * 1000.0
        );
        match &invocation.result {
            Ok(Some(contact)) => println!("{}", serde_json::to_string_pretty(contact)?),
            Ok(None) => println!("null"),
            Err(error) => eprintln!("{error}"),
        }
    }
    Ok(if invocation.result.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
