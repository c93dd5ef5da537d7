//! Communications dispatched per second by the campaign engine through the
//! SIMULATED channel, from RUNNING until every session is applied: on SQLite with one node and
//! on PostgreSQL with one and two nodes (engines with their own pools on
//! one database, as two `serve` processes would be), each running one or
//! two tick loops (`serve`'s `--engine-loops`). Each configuration
//! runs twice — without an AGGREGATION strategy (the queue alone: claim,
//! send, record, apply) and with examples/simulated/aggregation.py — and
//! the ratio of the two shows the strategy's cost. Sends and final results
//! are counted: duplicates and losses must be 0. Then the machine's CPU
//! (every process, PostgreSQL's too): cores busy on average with
//! AGGREGATION, and core-µs per communication for both runs, against the
//! budget the 20k/s target leaves. On PostgreSQL, the anchor: a peer
//! queue on the same server (graphile-worker, host/bench/peer, installed
//! with npm on first use), and our best one-node queue-only rate as a
//! ratio to it: to the peer working no-op jobs, and to the peer whose
//! jobs write sessions' outcomes on our schema as our queue does (one
//! communication a job; 50; 50 claimed first as ours are), which bounds
//! what a queue that records outcomes can reach here.
//!
//!   cargo run --release -p stratagem-bench --bin engine-bench
//!
//! Environment: ENGINE_CONTACTS (default 20000), ENGINE_BACKENDS (default
//! sqlite,postgres), ENGINE_SHAPES (nodes x loops on PostgreSQL, default
//! `1x1,1x2,2x1,2x2`), ENGINE_QUEUE_ONLY=1 (no run with AGGREGATION),
//! ENGINE_PEER=0 (no peer queue), STRATAGEM_TEST_POSTGRES,
//! STRATAGEM_COMPONENTIZE_PY.

// Not every program uses every helper.
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use stratagem_domain::{CampaignStatus, Communication, Contact, StageDefinition, StrategyType};
use stratagem_engine::{Engine, EngineConfig, StrategyService};
use stratagem_runtime::{Runtime, RuntimeConfig, StrategySource, SystemClock};
use stratagem_store::{NewCampaign, Store};
use support::{database, repo, CpuUse, MachineCpu};

struct Outcome {
    per_second: f64,
    cpu: CpuUse,
    sends: i64,
    unfinished: i64,
}

/// A campaign of `contacts` contacts, each with one communication due now,
/// RUNNING, in a new store on `url`: what every run dispatches.
struct Prepared {
    store: Store,
    tenant: String,
    campaign: String,
}

async fn prepare(url: &str, service: &Arc<StrategyService>, aggregation: Option<&[u8]>, contacts: usize) -> anyhow::Result<Prepared> {
    let store = Store::connect(url).await?;
    let (tenant, _) = store.tenants().create_tenant("bench").await?;
    let campaign = store
        .campaigns().create_campaign(&tenant, NewCampaign { name: "engine".into(), description: String::new(), llm_integration_id: None, llm_model: None, result_fields: Vec::new(), http_allowlist: Vec::new() }, Default::default())
        .await?;
    let stage: StageDefinition = serde_json::from_value(serde_json::json!({"name": "1. First contact", "channel": "SIMULATED"}))?;
    store.stages().create_stage(&tenant, &campaign.id, &stage).await?;
    if let Some(component) = aggregation {
        service.install(&store, &tenant, &campaign.id, StrategyType::Aggregation, component).await?;
    }
    let now = chrono::Utc::now();
    let rows: Vec<(Contact, Option<serde_json::Value>)> = (0..contacts)
        .map(|index| {
            let mut contact: Contact = serde_json::from_value(serde_json::json!({
                "object_id": format!("C-{index:08}"), "external_id": format!("U-{index}"), "name": format!("Person {index}"),
                "parameters": {"persona": "PAID"}, "current_stage": "1. First contact", "internal_data": {"attempts": 1}
            }))
            .expect("contact");
            contact.communications.push(Communication {
                id: None,
                name: "First contact".into(),
                stage_name: "1. First contact".into(),
                start_date: now - chrono::Duration::minutes(1),
                end_date: Some(now + chrono::Duration::hours(2)),
                status: Default::default(),
                flagged: false,
                alternative: None,
                parameters: Default::default(),
            });
            (contact, None)
        })
        .collect();
    for batch in rows.chunks(500) {
        store.contacts().upsert_contacts(&tenant, &campaign.id, batch).await?;
    }
    for status in [CampaignStatus::Configured, CampaignStatus::Running] {
        store.campaigns().set_campaign_status(&tenant, &campaign.id, status, None).await?;
    }
    Ok(Prepared { store, tenant, campaign: campaign.id })
}

/// The prepared campaign dispatched by `nodes` engines of `loops` tick
/// loops each until no communication is pending.
async fn run(url: &str, runtime: &Arc<Runtime>, aggregation: Option<&[u8]>, contacts: usize, (nodes, loops): (usize, usize)) -> anyhow::Result<Outcome> {
    let service = Arc::new(StrategyService::new(runtime.clone(), support::builder()));
    let Prepared { store, tenant, campaign } = prepare(url, &service, aggregation, contacts).await?;
    let config = EngineConfig { batch: 500, tick_every: Duration::ZERO, ..EngineConfig::default() };
    let cpu = MachineCpu::start()?;
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..nodes {
        let node_store = Store::connect(url).await?;
        let engine = Arc::new(Engine::new(node_store.clone(), service.clone(), Arc::new(SystemClock), config.clone()));
        for _ in 0..loops {
            let (engine, node_store) = (engine.clone(), node_store.clone());
            let (tenant, campaign) = (tenant.clone(), campaign.clone());
            workers.push(tokio::spawn(async move {
                loop {
                    let report = engine.tick().await?;
                    if report.is_idle() && node_store.dispatch().pending_communications(&tenant, &campaign).await? == 0 {
                        return anyhow::Ok(());
                    }
                }
            }));
        }
    }
    for worker in workers {
        worker.await??;
    }
    let elapsed = started.elapsed();
    let cpu = cpu.stop()?;
    let overview = store.analytics().campaign_overview(&tenant, &campaign).await?;
    Ok(Outcome {
        per_second: contacts as f64 / elapsed.as_secs_f64(),
        cpu,
        sends: store.dispatch().count_sends(&tenant, &campaign).await?,
        unfinished: overview.total_contacts - overview.processed_contacts,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let contacts: usize = std::env::var("ENGINE_CONTACTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let backends = std::env::var("ENGINE_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let postgres_shapes = shapes(&std::env::var("ENGINE_SHAPES").unwrap_or_else(|_| "1x1,1x2,2x1,2x2".into()))?;
    let queue_only = std::env::var("ENGINE_QUEUE_ONLY").is_ok_and(|v| v == "1");
    let peer = std::env::var("ENGINE_PEER").map_or(true, |v| v != "0");
    if std::env::var_os("STRATAGEM_COMPONENTIZE_PY").is_none() {
        std::env::set_var("STRATAGEM_COMPONENTIZE_PY", repo().join(".venv/bin/componentize-py"));
    }
    let dir = tempfile::tempdir()?;
    let runtime = Arc::new(Runtime::new(RuntimeConfig { cache_dir: dir.path().join("cache"), perf_map: support::perf_map(), ..RuntimeConfig::default() })?);
    let aggregation = match queue_only {
        true => None,
        false => {
            let source = StrategySource::from_path(&repo().join("examples/simulated/aggregation.py"))?;
            Some(support::builder().build(&source).await.context("building examples/simulated/aggregation.py")?)
        }
    };
    println!("{contacts} communications per run, RUNNING until every session is applied, SIMULATED channel");
    let cores = std::thread::available_parallelism()?.get();
    println!("CPU budget of the target (20k/s on {cores} cores): {:.0} core-µs per communication", 1e6 * cores as f64 / 20_000.0);
    println!(
        "{:<10} {:>5} {:>5} {:>16} {:>18} {:>7} {:>6} {:>10} {:>11} {:>17}",
        "backend", "nodes", "loops", "queue only /s", "with AGGREGATION /s", "ratio", "dups", "losses", "cores busy", "core-µs queue/AGG"
    );
    for backend in backends.split(',').map(str::trim) {
        // SQLite has one writer: one node, one loop.
        let shapes: &[(usize, usize)] = if backend == "postgres" { &postgres_shapes } else { &[(1, 1)] };
        let mut best_one_node: f64 = 0.0;
        for &(nodes, loops) in shapes {
            let queue = run(&database(backend, dir.path())?, &runtime, None, contacts, (nodes, loops)).await?;
            if nodes == 1 {
                best_one_node = best_one_node.max(queue.per_second);
            }
            let full = match &aggregation {
                Some(component) => Some(run(&database(backend, dir.path())?, &runtime, Some(component.as_slice()), contacts, (nodes, loops)).await?),
                None => None,
            };
            let expected = contacts as i64;
            let runs = || std::iter::once(&queue).chain(full.as_ref());
            let duplicates: i64 = runs().map(|run| (run.sends - expected).max(0)).sum();
            let losses: i64 = runs().map(|run| run.unfinished + (expected - run.sends).max(0)).sum();
            // The machine's load is the full run's, or the queue's alone.
            let busy = &full.as_ref().unwrap_or(&queue).cpu;
            let per_contact = |run: &Outcome| format!("{:.0}", run.cpu.core_seconds * 1e6 / contacts as f64);
            let dash = || "-".to_owned();
            println!(
                "{backend:<10} {nodes:>5} {loops:>5} {:>16.0} {:>18} {:>7} {duplicates:>6} {losses:>10} {:>5.2} of {:<2} {:>8} / {:<6}",
                queue.per_second,
                full.as_ref().map_or_else(dash, |full| format!("{:.0}", full.per_second)),
                full.as_ref().map_or_else(dash, |full| format!("{:.2}x", full.per_second / queue.per_second)),
                busy.cores_busy,
                busy.cores,
                per_contact(&queue),
                full.as_ref().map_or_else(dash, per_contact),
            );
        }
        if backend == "postgres" && peer {
            let mut best_peer: f64 = 0.0;
            for (label, batched) in [("default set-up", false), ("local queue of 500, batched completion", true)] {
                let rate = graphile_worker(&database(backend, dir.path())?, PeerTask::Noop { jobs: contacts }, batched)?;
                best_peer = best_peer.max(rate);
                println!("peer: graphile-worker 0.18.0, one process, 16 at once, {label}: {rate:.0} no-op jobs/s");
            }
            println!("our queue only, best of one node: {best_one_node:.0}/s = {:.2}× the best peer", best_one_node / best_peer);
            // The same peer doing what a communication's session writes
            // in our queue, on our schema: both sides then record outcomes.
            let service = Arc::new(StrategyService::new(runtime.clone(), support::builder()));
            for (batch, claim) in [(1, false), (50, false), (50, true)] {
                let url = database(backend, dir.path())?;
                let prepared = prepare(&url, &service, None, contacts).await?;
                let rate = graphile_worker(&url, PeerTask::Outcome { campaign: &prepared.campaign, batch, claim }, true)?;
                let overview = prepared.store.analytics().campaign_overview(&prepared.tenant, &prepared.campaign).await?;
                let sends = prepared.store.dispatch().count_sends(&prepared.tenant, &prepared.campaign).await?;
                anyhow::ensure!(
                    sends == contacts as i64 && overview.processed_contacts == contacts as i64,
                    "the peer's outcome jobs left {sends} sends and {} processed contacts of {contacts}",
                    overview.processed_contacts
                );
                let claimed = if claim { ", claimed first (IN_PROGRESS, committed)" } else { "" };
                println!(
                    "peer: graphile-worker 0.18.0, batched, jobs of {batch} communication(s){claimed}, each writing their sessions' \
                     outcome (sends, communications, contacts): {rate:.0} communications/s; ours {:.2}× that",
                    best_one_node / rate
                );
            }
        }
    }
    Ok(())
}

/// `1x2,2x1`: engines (nodes) × tick loops each.
fn shapes(list: &str) -> anyhow::Result<Vec<(usize, usize)>> {
    list.split(',')
        .map(|shape| {
            let (nodes, loops) = shape.trim().split_once('x').with_context(|| format!("ENGINE_SHAPES: `{shape}` is not NODESxLOOPS, e.g. 1x2"))?;
            Ok((nodes.parse().with_context(|| format!("ENGINE_SHAPES: nodes in `{shape}`"))?, loops.parse().with_context(|| format!("ENGINE_SHAPES: loops in `{shape}`"))?))
        })
        .collect()
}

/// What the peer's jobs do.
enum PeerTask<'a> {
    /// `jobs` jobs that do nothing, in a database of their own.
    Noop { jobs: usize },
    /// A job per `batch` PLANNED communications of our `campaign` in the
    /// same database, each ending their sessions as our queue does; with
    /// `claim`, claiming them first as our queue does before a send.
    Outcome { campaign: &'a str, batch: usize, claim: bool },
}

/// The peer queue on the same PostgreSQL server: graphile-worker working
/// the jobs of `task` (host/bench/peer). Jobs per second (communications
/// per second for [`PeerTask::Outcome`]). Installs it with npm on first use.
fn graphile_worker(url: &str, task: PeerTask<'_>, batched: bool) -> anyhow::Result<f64> {
    let peer = repo().join("host/bench/peer");
    if !peer.join("node_modules/graphile-worker").is_dir() {
        let installed = std::process::Command::new("npm").args(["ci", "--silent", "--no-audit", "--no-fund"]).current_dir(&peer).status();
        anyhow::ensure!(installed.is_ok_and(|status| status.success()), "`npm ci` in {} failed: Node.js and npm are needed for the peer queue", peer.display());
    }
    let mut command = std::process::Command::new("node");
    command.arg(peer.join("graphile_worker.mjs")).env("DATABASE_URL", url).env("BATCHED", if batched { "1" } else { "0" });
    match task {
        PeerTask::Noop { jobs } => command.env("TASK", "noop").env("JOBS", jobs.to_string()),
        PeerTask::Outcome { campaign, batch, claim } => {
            command.env("TASK", "outcome").env("CAMPAIGN", campaign).env("BATCH", batch.to_string()).env("CLAIM", if claim { "1" } else { "0" })
        }
    };
    let output = command.output().context("running node for the peer queue")?;
    anyhow::ensure!(output.status.success(), "the peer queue failed: {}", String::from_utf8_lossy(&output.stderr));
    let measured: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let jobs = measured["jobs"].as_f64().context("the peer's jobs")?;
    let seconds = measured["seconds"].as_f64().context("the peer's seconds")?;
    Ok(jobs / seconds)
}
