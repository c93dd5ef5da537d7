//! Memory per active tenant: how many tenants' strategies one node holds.
//! N tenants each have a strategy of their own (the spec's DATA_LOAD
//! snippet with a line naming the tenant, as two customers' code is),
//! measured two ways, each in a process of its own:
//! - as the service runs sources: in the platform's component, one
//!   compiled artifact for all (loaded from the artifact cache, as after a
//!   restart), each tenant's instance loading its sources;
//! - as components of their own: a component and a compiled artifact per
//!   tenant, all N loaded from the artifact cache.
//!
//! One runtime, as `serve` holds it, keeps one warm instance of each
//! tenant's strategy after a call. The program prints the
//! process's resident memory at each step, split as Linux accounts it:
//! anonymous (the process's own, with the memfd copies wasmtime makes of
//! memory images it cannot map from a file: what a node must hold) and
//! file-backed
//! (pages of mapped artifact files: shared with every process mapping the
//! same file, and reclaimable under memory pressure).
//!
//!   cargo run --release -p stratagem-bench --bin tenant-memory-bench
//!
//! Environment: TENANTS (default 20); STRATAGEM_COMPONENTIZE_PY;
//! STRATAGEM_BUILD_CACHE (the N builds are cached there when set).

#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use serde_json::json;
use stratagem_runtime::{Hook, InvokeOptions, Isolation, Runtime, RuntimeConfig, StrategySource};

/// The child process that measures: `tenant-memory-bench MEASURE <cache>
/// component <components…>` or `… MEASURE <cache> platform <platform> <sources…>`.
const MEASURE: &str = "MEASURE";

const MIB: f64 = (1 << 20) as f64;

/// What a node holds for the goal: ≥ 1,000 active tenants in 24 GiB.
const NODE_BYTES: f64 = 24.0 * 1024.0 * MIB;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(MEASURE) {
        return measure(Path::new(&args[2]), &args[3], &args[4..]).await;
    }
    let tenants: usize = std::env::var("TENANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    if std::env::var_os("STRATAGEM_COMPONENTIZE_PY").is_none() {
        std::env::set_var("STRATAGEM_COMPONENTIZE_PY", support::repo().join(".venv/bin/componentize-py"));
    }
    let spec = std::fs::read_to_string(support::repo().join("examples/spec/data_load.py"))?;
    let work = tempfile::tempdir()?;
    let cache = work.path().join("artifacts");
    let (mut components, mut sources) = (Vec::with_capacity(tenants), Vec::with_capacity(tenants));
    // Built and compiled here, measured in a child process: what building
    // and compiling allocated does not count against the tenants.
    let runtime = Arc::new(Runtime::new(RuntimeConfig { cache_dir: cache.clone(), ..RuntimeConfig::default() })?);
    let platform = work.path().join("platform.wasm");
    let bytes = support::builder().build_platform().await?;
    runtime.load_platform(&bytes)?;
    std::fs::write(&platform, &bytes)?;
    for tenant in 0..tenants {
        let text = format!("{spec}\n# The strategy of tenant {tenant}.\n");
        let path = work.path().join(format!("tenant-{tenant}.py"));
        std::fs::write(&path, &text)?;
        sources.push(path);
        let component = support::builder().build(&StrategySource::single("data_load.py", text)).await?;
        runtime.load(&component)?;
        let path = work.path().join(format!("tenant-{tenant}.wasm"));
        std::fs::write(&path, &component)?;
        components.push(path);
        eprintln!("built and compiled the strategy of tenant {}/{tenants}", tenant + 1);
    }
    drop(runtime);
    let child = |how: &str, files: &[PathBuf]| -> anyhow::Result<()> {
        let status = std::process::Command::new(std::env::current_exe()?).arg(MEASURE).arg(&cache).arg(how).args(files).status()?;
        if !status.success() {
            bail!("the measuring process failed: {status}");
        }
        println!();
        Ok(())
    };
    child("platform", &[vec![platform], sources].concat())?;
    child("component", &components)
}

/// Loads every tenant's strategy (`how`: sources in the platform's
/// component, or components from the cache), calls each once and keeps its
/// instance warm, printing resident memory at each step.
async fn measure(cache: &Path, how: &str, files: &[String]) -> anyhow::Result<()> {
    let in_platform = how == "platform";
    let tenants = files.len() - usize::from(in_platform);
    let slots = u32::try_from(tenants * 2 + 2)?;
    let runtime = Arc::new(Runtime::new(RuntimeConfig { cache_dir: cache.into(), max_instances: slots, ..RuntimeConfig::default() })?);
    let mut steps = vec![("runtime started", Resident::now()?)];
    let mut strategies = Vec::with_capacity(tenants);
    if in_platform {
        let platform = runtime.load_platform(&std::fs::read(&files[0])?)?;
        steps.push(("+ the platform component (artifact cache)", Resident::now()?));
        for path in &files[1..] {
            let source = StrategySource::single("data_load.py", std::fs::read_to_string(path)?);
            platform.try_load(&source, stratagem_runtime::Limits::default()).await?;
            strategies.push(platform.strategy(&source)?);
        }
        steps.push(("+ every tenant's sources", Resident::now()?));
    } else {
        for path in files {
            let (strategy, outcome) = runtime.load(&std::fs::read(path)?)?;
            if outcome != stratagem_runtime::CacheOutcome::Hit {
                bail!("{path} was compiled again: the artifact cache did not hold it");
            }
            strategies.push(strategy);
        }
        steps.push(("+ every strategy loaded (artifact cache)", Resident::now()?));
    }
    let hook = Hook::DataLoad { contact: serde_json::from_value(json!({
        "object_id": "C-1", "external_id": "U-1", "name": "John Smith", "email": "john@example.com", "phone": "+1234567890",
        "parameters": {"amount_due": "120.50"},
    }))?, existing: None };
    for (tenant, strategy) in strategies.iter().enumerate() {
        let options = InvokeOptions { tenant: format!("tenant-{tenant}"), isolation: Isolation::ReuseInstance, ..InvokeOptions::default() };
        strategy.invoke(&hook, &options).await.result.with_context(|| format!("tenant {tenant}'s DATA_LOAD"))?;
    }
    steps.push(("+ one call each (instance kept warm)", Resident::now()?));

    if in_platform {
        println!("{tenants} tenants, one strategy each, run in the platform's component (one artifact for all), one warm DATA_LOAD instance each");
    } else {
        println!("{tenants} tenants, one strategy each (a component and an artifact of its own), one warm DATA_LOAD instance each");
    }
    println!("{:<44} {:>10} {:>10} {:>10}", "resident MiB", "anonymous", "file", "total");
    for (label, at) in &steps {
        println!("{label:<44} {:>10.1} {:>10.1} {:>10.1}", at.anonymous / MIB, at.file / MIB, (at.anonymous + at.file) / MIB);
    }
    // Per tenant: from before the first tenant's strategy; the platform's
    // component is the node's, once, like the runtime.
    let (before, warm) = (&steps[steps.len() - 3].1, &steps[steps.len() - 1].1);
    let per = |of: fn(&Resident) -> f64| (of(warm) - of(before)) / tenants as f64;
    let (anonymous, file) = (per(|r| r.anonymous), per(|r| r.file));
    println!();
    println!("per active tenant: {:.1} MiB anonymous + {:.1} MiB file-backed = {:.1} MiB", anonymous / MIB, file / MIB, (anonymous + file) / MIB);
    println!(
        "active tenants per 24 GiB node: {:.0} counting anonymous memory (file pages are reclaimable), {:.0} counting both",
        NODE_BYTES / anonymous,
        NODE_BYTES / (anonymous + file)
    );
    Ok(())
}

/// The process's resident memory, from `/proc/self/status`.
struct Resident {
    anonymous: f64,
    file: f64,
}

impl Resident {
    fn now() -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(PathBuf::from("/proc/self/status")).context("reading /proc/self/status (Linux only)")?;
        let kib = |name: &str| -> anyhow::Result<f64> {
            let line = status.lines().find(|line| line.starts_with(name)).with_context(|| format!("no {name} in /proc/self/status"))?;
            let value: f64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse()?;
            Ok(value * 1024.0)
        };
        Ok(Self { anonymous: kib("RssAnon:")? + kib("RssShmem:")?, file: kib("RssFile:")? })
    }
}
