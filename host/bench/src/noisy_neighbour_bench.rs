//! Fair dispatch under a noisy neighbour (issue 22): tenant "flood" has
//! NOISY_FLOOD communications all due at once; tenant "small" has
//! NOISY_SMALL, becoming due one every NOISY_EVERY_MS while the engine
//! works through the flood. The small tenant's delay from due to sent (its
//! `channel_sends` row, written at the SIMULATED send), p50 and p99, is
//! measured with the flood and with the small tenant alone, and the ratio
//! printed. The engine runs as `serve` runs it: batches of 200, a tick
//! every NOISY_TICK_MS (1000, `serve`'s default; a tick that fills its
//! batch is followed at once), one tick loop on SQLite and two on
//! PostgreSQL, no strategies (the queue alone). Also printed: the flood's
//! sends per second meanwhile, and the machine's core-µs per send.
//!
//!   cargo run --release -p stratagem-bench --bin noisy-neighbour-bench
//!
//! Environment: NOISY_FLOOD (default 100000), NOISY_SMALL (default 20),
//! NOISY_EVERY_MS (default 250), NOISY_TICK_MS (default 1000; a list such
//! as `1000,50` runs each), NOISY_BACKENDS (default sqlite,postgres),
//! STRATAGEM_TEST_POSTGRES.

// Not every program uses every helper.
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use stratagem_domain::{CampaignStatus, Communication, Contact, StageDefinition};
use stratagem_engine::{CancellationToken, Engine, EngineConfig, StrategyService};
use stratagem_runtime::{Runtime, RuntimeConfig, SystemClock};
use stratagem_store::{NewCampaign, Store};
use support::{database, CpuUse, MachineCpu};

/// How long after the engine starts the small tenant's first send is due.
const LEAD: Duration = Duration::from_secs(1);

struct Settings {
    flood: usize,
    small: usize,
    every: Duration,
}

/// What one run measured.
struct Run {
    /// The small tenant's delays from due to sent, shortest first.
    delays: Vec<Duration>,
    /// Flood communications sent by the time the small tenant's last was.
    flood_sent: i64,
    /// From the engine's start to the small tenant's last send.
    elapsed: Duration,
    cpu: CpuUse,
}

/// A tenant with a RUNNING campaign of one SIMULATED stage, and a contact
/// per start date, each with one communication due then.
async fn tenant(store: &Store, name: &str, starts: &[chrono::DateTime<Utc>]) -> anyhow::Result<(String, String)> {
    let (tenant, _) = store.tenants().create_tenant(name).await?;
    let new = NewCampaign { name: name.into(), description: String::new(), llm_integration_id: None, llm_model: None, result_fields: Vec::new(), http_allowlist: Vec::new() };
    let campaign = store.campaigns().create_campaign(&tenant, new, Default::default()).await?;
    let stage: StageDefinition = serde_json::from_value(serde_json::json!({"name": "1. First contact", "channel": "SIMULATED"}))?;
    store.stages().create_stage(&tenant, &campaign.id, &stage).await?;
    for (chunk, dates) in starts.chunks(500).enumerate() {
        let rows: Vec<(Contact, Option<serde_json::Value>)> = dates
            .iter()
            .enumerate()
            .map(|(index, start)| {
                let index = chunk * 500 + index;
                let mut contact: Contact = serde_json::from_value(serde_json::json!({
                    "object_id": format!("C-{index:08}"), "external_id": format!("U-{index}"), "name": format!("Person {index}"),
                    "parameters": {"persona": "PAID"}, "current_stage": "1. First contact"
                }))?;
                contact.communications.push(Communication {
                    id: None,
                    name: "First contact".into(),
                    stage_name: "1. First contact".into(),
                    start_date: *start,
                    end_date: Some(*start + chrono::Duration::hours(2)),
                    status: Default::default(),
                    flagged: false,
                    alternative: None,
                    parameters: Default::default(),
                });
                Ok((contact, None))
            })
            .collect::<anyhow::Result<_>>()?;
        store.contacts().upsert_contacts(&tenant, &campaign.id, &rows).await?;
    }
    Ok((tenant, campaign.id))
}

/// Sends of `tenant`'s communications: (due, sent) in µs since the epoch.
async fn sends(pool: &sqlx::AnyPool, tenant: &str) -> anyhow::Result<Vec<(i64, i64)>> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT c.start_date, s.created_at FROM channel_sends s JOIN communications c ON c.id = s.communication_id WHERE s.tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|row| Ok((row.try_get("start_date")?, row.try_get("created_at")?))).collect()
}

/// How many sends `tenant` has had (through the send log's tenant index:
/// polled while the engine runs, so it must not scan the flood).
async fn count_sends(pool: &sqlx::AnyPool, tenant: &str) -> anyhow::Result<i64> {
    use sqlx::Row;
    let row = sqlx::query("SELECT COUNT(*) AS n FROM channel_sends WHERE tenant_id = $1").bind(tenant).fetch_one(pool).await?;
    Ok(row.try_get("n")?)
}

/// The small tenant's delays on a new database, with `flood` due at once
/// beside it (0: alone).
async fn run(url: &str, runtime: &Arc<Runtime>, settings: &Settings, flood: usize, tick: Duration, loops: usize) -> anyhow::Result<Run> {
    let store = Store::connect(url).await?;
    let flood_campaign = match flood {
        0 => None,
        n => {
            let due = Utc::now() - chrono::Duration::minutes(1);
            Some(tenant(&store, "flood", &vec![due; n]).await?)
        }
    };
    // Planned from now: the engine starts right after.
    let first = Utc::now() + chrono::Duration::from_std(LEAD)?;
    let every = chrono::Duration::from_std(settings.every)?;
    let starts: Vec<_> = (0..settings.small).map(|n| first + every * n as i32).collect();
    let small = tenant(&store, "small", &starts).await?;
    for (tenant, campaign) in flood_campaign.iter().chain([&small]) {
        for status in [CampaignStatus::Configured, CampaignStatus::Running] {
            store.campaigns().set_campaign_status(tenant, campaign, status, None).await?;
        }
    }
    let small_tenant = small.0.clone();

    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(url).await?;
    let service = Arc::new(StrategyService::new(runtime.clone(), support::builder()));
    let config = EngineConfig { tick_every: tick, loops, ..EngineConfig::default() };
    let engine_store = Store::connect(url).await?;
    let engine = Arc::new(Engine::new(engine_store.clone(), service, Arc::new(SystemClock), config));
    let shutdown = CancellationToken::new();
    let cpu = MachineCpu::start()?;
    let started = Instant::now();
    let ticking = engine.spawn(shutdown.clone());
    let deadline = LEAD + settings.every * settings.small as u32 + Duration::from_secs(600);
    loop {
        if count_sends(&pool, &small_tenant).await? >= settings.small as i64 {
            break;
        }
        if started.elapsed() > deadline {
            bail!("the small tenant's communications were not all sent after {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    let cpu = cpu.stop()?;
    let flood_sent = match &flood_campaign {
        Some((tenant, _)) => count_sends(&pool, tenant).await?,
        None => 0,
    };
    shutdown.cancel();
    ticking.await?;
    let mut delays: Vec<Duration> = sends(&pool, &small_tenant)
        .await?
        .into_iter()
        .map(|(due, sent)| Duration::from_micros((sent - due).max(0) as u64))
        .collect();
    delays.sort();
    pool.close().await;
    store.close().await;
    engine_store.close().await;
    drop_database(url)?;
    Ok(Run { delays, flood_sent, elapsed, cpu })
}

/// Drops a PostgreSQL database `support::database` made (SQLite files go
/// with the temporary directory).
fn drop_database(url: &str) -> anyhow::Result<()> {
    if let Some(name) = url.strip_prefix("postgres").and_then(|_| url.rsplit('/').next()) {
        if !std::process::Command::new("dropdb").args(["-h", "127.0.0.1", "-U", "postgres", "--force", name]).status()?.success() {
            bail!("dropdb {name} failed");
        }
    }
    Ok(())
}

/// The nearest-rank percentile of sorted `delays`.
fn percentile(delays: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * delays.len() as f64).ceil().max(1.0) as usize;
    delays.get(rank - 1).copied().unwrap_or_default()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings { flood: env("NOISY_FLOOD", 100_000), small: env("NOISY_SMALL", 20), every: Duration::from_millis(env("NOISY_EVERY_MS", 250)) };
    let backends = std::env::var("NOISY_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let ticks: Vec<u64> = std::env::var("NOISY_TICK_MS")
        .unwrap_or_else(|_| "1000".into())
        .split(',')
        .map(|tick| tick.trim().parse().with_context(|| format!("NOISY_TICK_MS: `{tick}` is not a number of milliseconds")))
        .collect::<anyhow::Result<_>>()?;
    if settings.small == 0 {
        bail!("NOISY_SMALL must be at least 1");
    }
    let dir = tempfile::tempdir()?;
    let runtime = Arc::new(Runtime::new(RuntimeConfig { cache_dir: dir.path().join("cache"), ..RuntimeConfig::default() })?);
    let cores = std::thread::available_parallelism()?.get();
    println!(
        "small tenant: {} communications due one every {} ms; flood: {} due at once; SIMULATED channel, batches of 200, {cores} cores",
        settings.small,
        settings.every.as_millis(),
        settings.flood
    );
    println!("delay = due → sent (its channel_sends row); p99 of {} sends is the nearest rank", settings.small);
    println!(
        "{:<10} {:>5} {:>7} {:>20} {:>20} {:>14} {:>12} {:>11} {:>12}",
        "backend", "loops", "tick ms", "alone p50/p99 ms", "flood p50/p99 ms", "ratio p50/p99", "flood sent/s", "flood left", "core-µs/send"
    );
    for backend in backends.split(',').map(str::trim) {
        // As `serve`: two tick loops on PostgreSQL, one on SQLite (one writer).
        let loops = if backend == "postgres" { 2 } else { 1 };
        for &tick in &ticks {
            let tick = Duration::from_millis(tick);
            let alone = run(&database(backend, dir.path())?, &runtime, &settings, 0, tick, loops).await?;
            let noisy = run(&database(backend, dir.path())?, &runtime, &settings, settings.flood, tick, loops).await?;
            let (alone50, alone99) = (percentile(&alone.delays, 50.0), percentile(&alone.delays, 99.0));
            let (noisy50, noisy99) = (percentile(&noisy.delays, 50.0), percentile(&noisy.delays, 99.0));
            let sent = noisy.flood_sent + settings.small as i64;
            let ratio = format!("{:.2}x / {:.2}x", ms(noisy50) / ms(alone50).max(1e-3), ms(noisy99) / ms(alone99).max(1e-3));
            println!(
                "{backend:<10} {loops:>5} {:>7} {:>9.0} / {:<8.0} {:>9.0} / {:<8.0} {ratio:>14} {:>12.0} {:>11} {:>12.0}",
                tick.as_millis(),
                ms(alone50),
                ms(alone99),
                ms(noisy50),
                ms(noisy99),
                noisy.flood_sent as f64 / noisy.elapsed.as_secs_f64(),
                settings.flood as i64 - noisy.flood_sent,
                noisy.cpu.core_seconds * 1e6 / sent.max(1) as f64,
            );
            if noisy.flood_sent >= settings.flood as i64 {
                println!("  (the flood was all sent before the small tenant's last send: raise NOISY_FLOOD to keep it busy)");
            }
        }
    }
    Ok(())
}
