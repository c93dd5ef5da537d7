//! What every benchmark program shares: the repository root, a fresh
//! database per run, and the service's API served in-process.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::bail;
use serde_json::Value;
use stratagem_api::{AppState, ConnectionLimits, StrategyService};
use stratagem_store::Store;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A new SQLite file in `dir`, or a new PostgreSQL database on
/// `$STRATAGEM_TEST_POSTGRES` (default postgres://postgres@127.0.0.1:5432).
pub fn database(backend: &str, dir: &Path) -> anyhow::Result<String> {
    let unique = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos());
    Ok(match backend {
        "sqlite" => format!("sqlite://{}", dir.join(format!("bench-{unique}.db")).display()),
        "postgres" => {
            let server = std::env::var("STRATAGEM_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
            let name = format!("stratagem_bench_{unique}");
            if !std::process::Command::new("createdb").args(["-h", "127.0.0.1", "-U", "postgres", &name]).status()?.success() {
                bail!("createdb {name} failed");
            }
            format!("{server}/{name}")
        }
        other => bail!("unknown backend {other}"),
    })
}

/// The whole machine's CPU use from `/proc/stat`: every process counts
/// (the service, PostgreSQL, the benchmark's own client), so a step that
/// keeps every core busy shows the machine, not the code, as its limit.
pub struct MachineCpu {
    busy: u64,
    total: u64,
    at: std::time::Instant,
}

/// What a step cost the machine.
pub struct CpuUse {
    /// Cores busy on average, of `cores`.
    pub cores_busy: f64,
    pub cores: usize,
    /// Core-seconds spent during the step.
    pub core_seconds: f64,
}

impl MachineCpu {
    pub fn start() -> anyhow::Result<Self> {
        let (busy, total, _) = proc_stat()?;
        Ok(Self { busy, total, at: std::time::Instant::now() })
    }

    pub fn stop(&self) -> anyhow::Result<CpuUse> {
        let (busy, total, cores) = proc_stat()?;
        let share = (busy - self.busy) as f64 / (total - self.total).max(1) as f64;
        let cores_busy = share * cores as f64;
        Ok(CpuUse { cores_busy, cores, core_seconds: cores_busy * self.at.elapsed().as_secs_f64() })
    }
}

/// (busy ticks, all ticks, cores) of the machine; idle and iowait are
/// the ticks not busy.
fn proc_stat() -> anyhow::Result<(u64, u64, usize)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let mut lines = stat.lines();
    let first = lines.next().unwrap_or_default();
    let Some(fields) = first.strip_prefix("cpu ") else { bail!("/proc/stat does not start with the aggregate cpu line: {first}") };
    let ticks: Vec<u64> = fields.split_whitespace().map(str::parse).collect::<Result<_, _>>()?;
    if ticks.len() < 5 {
        bail!("/proc/stat's cpu line has {} fields, not the 5 or more of Linux 2.6: {first}", ticks.len());
    }
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: u64 = ticks.iter().take(8).sum();
    let busy = total - ticks[3] - ticks[4];
    let cores = lines.filter(|line| line.starts_with("cpu")).count();
    Ok((busy, total, cores))
}

/// Whether to write a perf map for `perf record` (`STRATAGEM_PERFMAP`):
/// the runtime then names the guest's compiled functions.
pub fn perf_map() -> bool {
    std::env::var_os("STRATAGEM_PERFMAP").is_some()
}

/// The strategy builder the benchmarks use: componentize-py from
/// `$STRATAGEM_COMPONENTIZE_PY` (which `make bench` sets), builds cached in
/// `$STRATAGEM_BUILD_CACHE` when it is set.
pub fn builder() -> stratagem_runtime::Builder {
    let tool = std::env::var_os("STRATAGEM_COMPONENTIZE_PY").unwrap_or_else(|| "componentize-py".into());
    let builder = stratagem_runtime::Builder::new(tool);
    match std::env::var_os("STRATAGEM_BUILD_CACHE") {
        Some(dir) => builder.with_cache(dir),
        None => builder,
    }
}

/// The API of a service running in this process, as one tenant.
pub struct Api {
    pub base: String,
    pub key: String,
    pub http: reqwest::Client,
    pub store: Store,
    pub tenant: String,
}

impl Api {
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, format!("{}/api{path}", self.base)).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = request.send().await?;
        let status = reply.status();
        let body: Value = reply.json().await?;
        if !status.is_success() {
            bail!("{path}: {status} {body}");
        }
        Ok(body)
    }

    /// POSTs a file (`content_type`) to `path`; the reply's JSON, whatever
    /// its status (an upload's refusal says why in it).
    pub async fn upload(&self, path: &str, content_type: &str, body: Vec<u8>) -> anyhow::Result<Value> {
        let request = self.http.post(format!("{}/api{path}", self.base)).bearer_auth(&self.key).header("content-type", content_type);
        Ok(request.body(body).send().await?.json().await?)
    }
}

/// Serves the API on `url`'s database with `strategies`, for a new tenant.
pub async fn start(url: &str, strategies: Arc<StrategyService>) -> anyhow::Result<Api> {
    let store = Store::connect(url).await?;
    let (tenant, key) = store.tenants().create_tenant("bench").await?;
    let state = AppState::new(store.clone(), strategies);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = stratagem_api::app(state);
    tokio::spawn(stratagem_api::serve(listener, app, ConnectionLimits::default(), std::future::pending()));
    Ok(Api { base, key: key.key, http: reqwest::Client::new(), store, tenant })
}
