//! Throughput and latency of one strategy hook, by default the spec's
//! DATA_LOAD snippet: (a) native CPython in-process, (b) warm reused
//! instance, (c) fresh instance per invocation, each for the strategy run
//! in the platform's component (as the service runs sources) and as a
//! component of its own; plus build (componentize) and precompile times,
//! cold, and an edit made runnable both ways (`edit`). With native and
//! warm, also how fast the sandbox runs the Python inside a call, apart
//! from the boundary (`python_inside`).
//!
//!   make bench            (or: cargo run --release -p stratagem-bench --bin runtime-bench)
//!
//! Environment: BENCH_ITERATIONS (default 2000); BENCH_MODES, a comma list
//! of native,warm,fresh (default all: ratios need native), for profiling
//! one path; BENCH_HOOK, data_load (default) or aggregation (a contact
//! whose one communication's session ended PAID, as the engine benchmark
//! runs it; BENCH_HISTORY=n gives it n completed communications before
//! that one); BENCH_STRATEGY, a strategy file for that hook relative to the
//! repository (default the spec's data-load snippet, or for aggregation
//! examples/simulated/aggregation.py); STRATAGEM_COMPONENTIZE_PY.

#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use stratagem_domain::{Contact, JsonMap};
use stratagem_runtime::{
    Hook, InvokeOptions, Isolation, Platform, Runtime, RuntimeConfig, Strategy, StrategySource,
};

/// A hook the benchmark runs, with the input both sides get (the native
/// baseline builds the same one: native_baseline.py).
#[derive(Clone, Copy)]
enum BenchHook {
    DataLoad,
    /// With `history` completed communications before the one that ended.
    Aggregation { history: usize },
}

impl BenchHook {
    fn from_env() -> anyhow::Result<Self> {
        match std::env::var("BENCH_HOOK").as_deref() {
            Err(_) | Ok("data_load") => Ok(Self::DataLoad),
            Ok("aggregation") => {
                let history = std::env::var("BENCH_HISTORY").ok().map(|n| n.parse()).transpose().context("BENCH_HISTORY")?;
                Ok(Self::Aggregation { history: history.unwrap_or(0) })
            }
            Ok(other) => bail!("BENCH_HOOK={other}: expected data_load or aggregation"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::DataLoad => "data_load",
            Self::Aggregation { .. } => "aggregation",
        }
    }

    fn default_strategy(self) -> &'static str {
        match self {
            Self::DataLoad => "examples/spec/data_load.py",
            Self::Aggregation { .. } => "examples/simulated/aggregation.py",
        }
    }

    /// The default strategy's own work, repeated inside one call.
    fn body_strategy(self) -> &'static str {
        match self {
            Self::DataLoad => "host/bench/strategies/data_load_body.py",
            Self::Aggregation { .. } => "host/bench/strategies/aggregation_body.py",
        }
    }

    fn input(self) -> Hook {
        match self {
            Self::DataLoad => Hook::DataLoad { contact: contact(), existing: None },
            Self::Aggregation { history } => {
                let earlier = (1..=history).map(|n| {
                    json!({"id": format!("comm-earlier-{n}"), "name": "Earlier attempt", "stage_name": "1. First contact",
                        "start_date": "2026-11-20T09:00:00Z", "end_date": "2026-11-20T17:00:00Z",
                        "status": {"status": "COMPLETED"}, "flagged": false})
                });
                let ended = json!({"id": "comm-1", "name": "First contact", "stage_name": "1. First contact",
                    "start_date": "2026-11-27T09:00:00Z", "end_date": "2026-11-27T17:00:00Z",
                    "status": {"status": "IN_PROGRESS"}, "flagged": true});
                let contact = serde_json::from_value(json!({
                    "object_id": "CONTRACT-123", "external_id": "USER-456", "name": "John Smith",
                    "email": "john@example.com", "phone": "+1234567890",
                    "parameters": {"amount_due": "120.50"}, "current_stage": "1. First contact",
                    "internal_data": {"attempts": 1},
                    "communications": earlier.chain([ended]).collect::<Vec<_>>(),
                }))
                .expect("valid contact");
                let mut session_results = JsonMap::new();
                session_results.insert("OutcomeStatus".into(), "PAID".into());
                Hook::Aggregation { contact, session_results: Some(session_results) }
            }
        }
    }
}

struct Stats {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    /// Fuel (roughly, wasm instructions) per sandboxed invocation: unlike
    /// time, it does not move with the machine's load, so it compares two
    /// builds of the SDK or runtime exactly.
    fuel: Option<u64>,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let total: Duration = samples.iter().sum();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Stats { per_second: samples.len() as f64 / total.as_secs_f64(), p50: at(0.50), p99: at(0.99), fuel: None }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn contact() -> Contact {
    serde_json::from_value(json!({
        "object_id": "CONTRACT-123", "external_id": "USER-456", "name": "John Smith",
        "email": "john@example.com", "phone": "+1234567890",
        "parameters": {"amount_due": "120.50", "due_date": "2026-12-01"},
    }))
    .expect("valid contact")
}

/// Native CPython running a strategy in a process of its own
/// (native_baseline.py), timing calls when asked.
struct Native {
    process: std::process::Child,
    requests: std::process::ChildStdin,
    replies: std::io::BufReader<std::process::ChildStdout>,
}

impl Native {
    fn start(strategy: &str, hook: BenchHook) -> anyhow::Result<Self> {
        let python = repo().join(".venv/bin/python");
        let mut process = std::process::Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/native_baseline.py"))
            .arg(repo().join(strategy))
            .arg(hook.name())
            .arg(match hook {
                BenchHook::Aggregation { history } => history.to_string(),
                BenchHook::DataLoad => "0".into(),
            })
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("running {}; run `make setup` first", python.display()))?;
        let requests = process.stdin.take().context("the baseline's stdin")?;
        let replies = std::io::BufReader::new(process.stdout.take().context("the baseline's stdout")?);
        Ok(Self { process, requests, replies })
    }

    /// Times `calls` calls, one after another.
    fn time(&mut self, calls: usize) -> anyhow::Result<Vec<Duration>> {
        use std::io::{BufRead, Write};
        writeln!(self.requests, "{calls}")?;
        let mut line = String::new();
        if self.replies.read_line(&mut line)? == 0 {
            bail!("the native baseline stopped: {:?} (its error is above)", self.process.wait()?);
        }
        let nanos: Vec<u64> = serde_json::from_str(&line)?;
        Ok(nanos.into_iter().map(Duration::from_nanos).collect())
    }
}

impl Drop for Native {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

async fn sandboxed(strategy: &Strategy, hook: BenchHook, isolation: Isolation, iterations: usize) -> anyhow::Result<Stats> {
    let warm_up = iterations.min(200);
    let (samples, fuel) = sandboxed_samples(strategy, hook, isolation, warm_up, iterations).await?;
    Ok(Stats { fuel: Some(fuel), ..stats(samples) })
}

/// Each call's time, and the fuel a call used (their mean).
async fn sandboxed_samples(strategy: &Strategy, hook: BenchHook, isolation: Isolation, warm_up: usize, iterations: usize) -> anyhow::Result<(Vec<Duration>, u64)> {
    let options = InvokeOptions { tenant: "bench".into(), isolation, ..InvokeOptions::default() };
    let hook = hook.input();
    for _ in 0..warm_up {
        strategy.invoke(&hook, &options).await.result?;
    }
    let mut samples = Vec::with_capacity(iterations);
    let mut fuel = 0;
    for _ in 0..iterations {
        let started = Instant::now();
        let invocation = strategy.invoke(&hook, &options).await;
        samples.push(started.elapsed());
        fuel += invocation.usage.fuel;
        invocation.result?;
    }
    Ok((samples, fuel / iterations.max(1) as u64))
}

fn row(label: &str, s: &Stats, ratio: Option<f64>) {
    let ratio = ratio.map_or(String::from("-"), |ratio| format!("{ratio:.2}"));
    let fuel = s.fuel.map_or(String::from("-"), |fuel| fuel.to_string());
    println!(
        "{label:<34} {:>12.0} {:>10.1} {:>10.1} {:>8} {:>10}",
        s.per_second,
        s.p50.as_secs_f64() * 1e6,
        s.p99.as_secs_f64() * 1e6,
        ratio,
        fuel
    );
}

/// Rounds in which native CPython and the sandbox take turns.
const ROUNDS: usize = 25;
/// Native calls are several times cheaper: a round makes this many times
/// more of them, so both are timed over spans of similar length.
const NATIVE_CALLS_PER_SANDBOXED: usize = 8;

/// Native CPython and a warm reused instance, taking turns in short
/// rounds so that this shared machine's drift in speed falls on both
/// alike. A round's ratio is of its median calls (native p50 ÷ sandboxed
/// p50): bursts of noise here lengthen a few calls by several times,
/// which moves a mean but not a median.
struct SideBySide {
    /// Every round's calls.
    native: Stats,
    warm: Stats,
    /// Each round's ratio, lowest first.
    ratios: Vec<f64>,
}

impl SideBySide {
    fn ratio(&self) -> f64 {
        self.ratios[self.ratios.len() / 2]
    }

    /// The middle half of the rounds' ratios.
    fn spread(&self) -> String {
        let quarter = self.ratios.len() / 4;
        format!("{:.2}–{:.2}", self.ratios[quarter], self.ratios[self.ratios.len() - 1 - quarter])
    }
}

async fn side_by_side(path: &str, strategy: &Strategy, hook: BenchHook, iterations: usize) -> anyhow::Result<SideBySide> {
    let per_round = iterations.div_ceil(ROUNDS);
    let mut native = Native::start(path, hook)?;
    sandboxed_samples(strategy, hook, Isolation::ReuseInstance, 200, 0).await?;
    let (mut native_samples, mut warm_samples, mut ratios, mut fuel) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for _ in 0..ROUNDS {
        let native_round = native.time(per_round * NATIVE_CALLS_PER_SANDBOXED)?;
        let (warm_round, round_fuel) = sandboxed_samples(strategy, hook, Isolation::ReuseInstance, 0, per_round).await?;
        fuel += round_fuel;
        ratios.push(stats(native_round.clone()).p50.as_secs_f64() / stats(warm_round.clone()).p50.as_secs_f64());
        native_samples.extend(native_round);
        warm_samples.extend(warm_round);
    }
    ratios.sort_by(f64::total_cmp);
    Ok(SideBySide { native: stats(native_samples), warm: Stats { fuel: Some(fuel / ROUNDS as u64), ..stats(warm_samples) }, ratios })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let iterations: usize = std::env::var("BENCH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    if std::env::var_os("STRATAGEM_COMPONENTIZE_PY").is_none() {
        std::env::set_var("STRATAGEM_COMPONENTIZE_PY", repo().join(".venv/bin/componentize-py"));
    }
    std::env::remove_var("STRATAGEM_BUILD_CACHE"); // time a real build

    let hook = BenchHook::from_env()?;
    let strategy_path = std::env::var("BENCH_STRATEGY").unwrap_or_else(|_| hook.default_strategy().into());
    let source = StrategySource::from_path(&repo().join(&strategy_path))?;
    let started = Instant::now();
    let component = support::builder().build(&source).await?;
    let build_time = started.elapsed();

    let cache = tempfile::tempdir()?;
    let runtime = Arc::new(Runtime::new(RuntimeConfig { cache_dir: cache.path().into(), perf_map: support::perf_map(), ..RuntimeConfig::default() })?);
    let started = Instant::now();
    runtime.load(&component)?;
    let precompile_time = started.elapsed();
    let started = Instant::now();
    let (strategy, _) = runtime.load(&component)?;
    let cached_load_time = started.elapsed();

    // The platform's part, prepared as on a running node (not timed): the
    // service runs a strategy uploaded as source in it.
    let platform = runtime.load_platform(&support::builder().build_platform().await?)?;
    let in_platform = platform.strategy(&source)?;

    let modes = std::env::var("BENCH_MODES").unwrap_or_else(|_| "native,warm,fresh".into());
    println!("strategy: {strategy_path} ({}), {iterations} sequential invocations each, one thread", hook.name());
    println!("{:<34} {:>12} {:>10} {:>10} {:>8} {:>10}", "", "invocations/s", "p50 µs", "p99 µs", "× native", "fuel/call");
    // With native and warm, they take turns (`side_by_side`); the other
    // rows are compared with native's p50 over all its rounds. Every
    // "× native" is of p50s (`SideBySide`).
    let mut native = None;
    if modes.contains("native") && modes.contains("warm") {
        let compared = side_by_side(&strategy_path, &in_platform, hook, iterations).await?;
        row("(a) native CPython, in-process", &compared.native, None);
        row("(b) platform, warm reused instance", &compared.warm, Some(compared.ratio()));
        println!("{:<34} {:>52}", "", format!("(× native, the middle half of {ROUNDS} rounds: {})", compared.spread()));
        native = Some(compared.native);
    } else if modes.contains("native") {
        let alone = stats(Native::start(&strategy_path, hook)?.time(iterations)?);
        row("(a) native CPython, in-process", &alone, None);
        native = Some(alone);
    } else if modes.contains("warm") {
        let warm = sandboxed(&in_platform, hook, Isolation::ReuseInstance, iterations).await?;
        row("(b) platform, warm reused instance", &warm, None);
    }
    let ratio = |s: &Stats| native.as_ref().map(|native| native.p50.as_secs_f64() / s.p50.as_secs_f64());
    if modes.contains("warm") {
        let warm = sandboxed(&strategy, hook, Isolation::ReuseInstance, iterations).await?;
        row("(b') own component, warm", &warm, ratio(&warm));
    }
    if modes.contains("fresh") {
        let fresh = sandboxed(&in_platform, hook, Isolation::FreshInstance, iterations).await?;
        row("(c) platform, fresh instance + load", &fresh, ratio(&fresh));
        let fresh = sandboxed(&strategy, hook, Isolation::FreshInstance, iterations).await?;
        row("(c') own component, fresh instance", &fresh, ratio(&fresh));
    }
    if modes.contains("native") && modes.contains("warm") {
        python_inside(&platform, hook, iterations).await?;
    }
    println!();
    println!("build (componentize-py):          {:>8.2} s  ({} bytes)", build_time.as_secs_f64(), component.len());
    println!("precompile (cranelift, uncached): {:>8.2} s", precompile_time.as_secs_f64());
    println!("load from artifact cache:         {:>8.1} ms", cached_load_time.as_secs_f64() * 1e3);
    println!(
        "upload-to-runnable (build + precompile): {:.2} s",
        (build_time + precompile_time).as_secs_f64()
    );
    edit(&runtime, &platform, &source, hook, build_time + precompile_time).await?;
    syntax_error(&platform, &source).await
}

/// How fast the sandbox runs the Python a call is made of, apart from the
/// boundary: the SDK's conversion, and the default strategy's own work,
/// each repeated 100 times inside one call so that the call's crossing is
/// paid once per 100. A call whose boundary cost nothing would run at
/// about these ratios (between them, by how much of each it has).
async fn python_inside(platform: &Platform, hook: BenchHook, iterations: usize) -> anyhow::Result<()> {
    let iterations = (iterations / 10).max(100);
    println!();
    println!("the Python inside a call, 100 times a call ({iterations} calls each; the boundary crossed once per 100):");
    let parts = [("the SDK's conversion, both ways", "host/bench/strategies/sdk_conversion.py"), ("the default strategy's own work", hook.body_strategy())];
    for (label, path) in parts {
        let strategy = platform.strategy(&StrategySource::from_path(&repo().join(path))?)?;
        let compared = side_by_side(path, &strategy, hook, iterations).await?;
        let fuel = compared.warm.fuel.unwrap_or_default() / 100;
        println!("  {label:<34} {:>5.2} × native (middle half {}), {fuel:>8} fuel each ({path})", compared.ratio(), compared.spread());
    }
    Ok(())
}

/// An edit with a syntax error: how soon the upload's syntax check says
/// so (the checker prepared, as on a running node), against the build
/// that would otherwise report it, in this run.
async fn syntax_error(platform: &Platform, source: &StrategySource) -> anyhow::Result<()> {
    let mut broken = source.clone();
    let entry = broken.files.get_mut(&broken.entry).context("the entry file")?;
    entry.push_str(&format!("\n# broken at {:?}\nx = (1,\n", std::time::SystemTime::now()));
    let started = Instant::now();
    let found = platform.check(&broken, stratagem_runtime::Limits::default()).await?.context("the check finds the error")?;
    let checked = started.elapsed();
    let started = Instant::now();
    let built = support::builder().build(&broken).await;
    let build_time = started.elapsed();
    if !matches!(built, Err(stratagem_runtime::BuildError::Python(_))) {
        bail!("the build of the broken source did not fail with its Python error");
    }
    println!();
    println!("a syntax error ({}, line {}):", found.type_name, found.line.unwrap_or_default());
    println!("  the upload's syntax check:        {:>8.1} ms", checked.as_secs_f64() * 1e3);
    println!("  the build that would report it:   {:>8.2} s", build_time.as_secs_f64());
    println!("  reported {:.0}× sooner", build_time.as_secs_f64() / checked.as_secs_f64());
    Ok(())
}

/// An edit of the strategy (a source nothing has seen), made runnable and
/// called once, two ways in this run:
/// - as the service does: the upload's syntax check, its build (the
///   sources loaded once into the platform's component, already
///   prepared as on a running node), then the first call, whose new
///   instance loads them;
/// - as a component of its own (`stratagem strategy build`, and the
///   service's path before the platform component): componentize-py,
///   then a compile with the platform's functions in the function cache
///   (the first strategy's compile put them there), then the first call.
///
/// Both are compared with the first strategy's cold path, above.
async fn edit(runtime: &Arc<Runtime>, platform: &Platform, source: &StrategySource, hook: BenchHook, cold: Duration) -> anyhow::Result<()> {
    let edit = |source: &StrategySource, how: &str| -> anyhow::Result<StrategySource> {
        let mut edited = source.clone();
        let entry = edited.files.get_mut(&edited.entry).context("the entry file")?;
        entry.push_str(&format!("\n# edited {how} at {:?}\n", std::time::SystemTime::now()));
        Ok(edited)
    };
    let options = InvokeOptions { tenant: "bench".into(), ..InvokeOptions::default() };
    let limits = stratagem_runtime::Limits::default();

    let edited = edit(source, "for the platform")?;
    let started = Instant::now();
    if let Some(error) = platform.check(&edited, limits).await? {
        bail!("the edited source has a syntax error: {error}");
    }
    let check_time = started.elapsed();
    let started = Instant::now();
    platform.try_load(&edited, limits).await?;
    let strategy = platform.strategy(&edited)?;
    let load_time = started.elapsed();
    let started = Instant::now();
    strategy.invoke(&hook.input(), &options).await.result?;
    let first_call = started.elapsed();
    let platform_total = check_time + load_time + first_call;
    println!();
    println!("edit, as the service makes it runnable (the platform's component prepared):");
    println!("  syntax check:                     {:>8.1} ms", check_time.as_secs_f64() * 1e3);
    println!("  build (sources loaded once):      {:>8.1} ms", load_time.as_secs_f64() * 1e3);
    println!("  first call (instance + load):     {:>8.1} ms", first_call.as_secs_f64() * 1e3);
    println!("  edit-to-first-call:               {:>8.1} ms", platform_total.as_secs_f64() * 1e3);

    let edited = edit(source, "as a component")?;
    let started = Instant::now();
    let component = support::builder().build(&edited).await?;
    let build_time = started.elapsed();
    let started = Instant::now();
    let (strategy, outcome) = runtime.load(&component)?;
    let precompile_time = started.elapsed();
    if outcome != stratagem_runtime::CacheOutcome::Compiled {
        bail!("the edited strategy was found in the artifact cache: it is not a new source");
    }
    let started = Instant::now();
    strategy.invoke(&hook.input(), &options).await.result?;
    let first_call = started.elapsed();
    let total = build_time + precompile_time + first_call;
    println!("edit, as a component of its own (the platform's functions compiled before):");
    println!("  build (componentize-py):          {:>8.2} s", build_time.as_secs_f64());
    println!("  precompile (functions cached):    {:>8.2} s", precompile_time.as_secs_f64());
    println!("  first call:                       {:>8.1} ms", first_call.as_secs_f64() * 1e3);
    println!("  edit-to-first-call:               {:>8.2} s", total.as_secs_f64());
    println!(
        "edit-to-first-call, the service's way: {:.1} ms; {:.0}× faster than a component of its own ({:.2} s), {:.0}× faster than the first strategy's build + cold precompile ({:.2} s)",
        platform_total.as_secs_f64() * 1e3,
        total.as_secs_f64() / platform_total.as_secs_f64(),
        total.as_secs_f64(),
        cold.as_secs_f64() / platform_total.as_secs_f64(),
        cold.as_secs_f64()
    );
    Ok(())
}
