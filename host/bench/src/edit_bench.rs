//! Edit to first call, through the API: a user edits a DATA_LOAD strategy
//! (a source no node has seen), waits for it to be ready, and imports one
//! contact, whose import job runs it: the time from the upload until that
//! job is done, on SQLite, polled every 10 ms. Two ways in the same run:
//!
//! - the service's: the source uploaded as is; it is checked, loaded once
//!   into the platform's component (prepared before timing, as on a
//!   running node), and each new instance loads it;
//! - a component of its own, as the service made one before: built with
//!   componentize-py (the build cache off), uploaded, and compiled with the
//!   platform's functions already in the function cache (the platform's
//!   compile put them there: warm for the platform's parts).
//!
//!   cargo run --release -p stratagem-bench --bin edit-bench
//!
//! Environment: EDITS (default 3: each way is timed that many times, a new
//! source each, and the median printed); STRATAGEM_COMPONENTIZE_PY.

#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use stratagem_api::StrategyService;
use stratagem_runtime::{Runtime, RuntimeConfig, StrategySource};
use support::{database, repo, start, Api};

const POLL: Duration = Duration::from_millis(10);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let edits: usize = std::env::var("EDITS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    if std::env::var_os("STRATAGEM_COMPONENTIZE_PY").is_none() {
        std::env::set_var("STRATAGEM_COMPONENTIZE_PY", repo().join(".venv/bin/componentize-py"));
    }
    std::env::remove_var("STRATAGEM_BUILD_CACHE"); // time real builds
    let dir = tempfile::tempdir()?;
    let runtime = Arc::new(Runtime::new(RuntimeConfig { cache_dir: dir.path().join("artifacts"), ..RuntimeConfig::default() })?);
    let strategies = Arc::new(StrategyService::new(runtime, support::builder()));
    let started = Instant::now();
    strategies.platform().await?;
    let prepared = started.elapsed();
    let api = start(&database("sqlite", dir.path())?, strategies).await?;
    let spec = std::fs::read_to_string(repo().join("examples/spec/data_load.py"))?;
    let edited = |how: &str, round: usize| format!("{spec}\n# edited {how} ({round}) at {:?}\n", std::time::SystemTime::now());

    let (mut service, mut component) = (Vec::new(), Vec::new());
    for round in 0..edits {
        let campaign = new_campaign(&api).await?;
        let started = Instant::now();
        let uploaded = api
            .call(reqwest::Method::POST, &format!("/campaigns/{campaign}/strategies"), Some(json!({"name": "load", "type": "DATA_LOAD", "source": edited("as source", round)})))
            .await?;
        let ready = wait_until_ready(&api, uploaded["id"].as_str().context("strategy id")?).await?;
        let ready_at = started.elapsed();
        first_call(&api, &campaign).await?;
        service.push((ready_at, started.elapsed()));
        eprintln!("service's way, edit {}: ready {:.0} ms, first call done {:.0} ms ({ready})", round + 1, ms(ready_at), ms(started.elapsed()));

        let campaign = new_campaign(&api).await?;
        let started = Instant::now();
        let source = StrategySource::single("data_load.py", edited("as a component", round));
        let bytes = support::builder().build(&source).await?;
        let built_at = started.elapsed();
        let uploaded = api.upload(&format!("/campaigns/{campaign}/strategies/component?name=load&type=DATA_LOAD"), "application/wasm", bytes).await?;
        wait_until_ready(&api, uploaded["id"].as_str().with_context(|| format!("upload refused: {uploaded}"))?).await?;
        let ready_at = started.elapsed();
        first_call(&api, &campaign).await?;
        component.push((ready_at, started.elapsed()));
        eprintln!(
            "own component, edit {}: built {:.0} ms, ready {:.0} ms, first call done {:.0} ms",
            round + 1,
            ms(built_at),
            ms(ready_at),
            ms(started.elapsed())
        );
    }
    let median = |times: &mut Vec<(Duration, Duration)>| {
        times.sort_by_key(|(_, done)| *done);
        times[times.len() / 2]
    };
    let (service, component) = (median(&mut service), median(&mut component));
    println!("edit to first call through the API, SQLite, median of {edits} (the platform's component prepared in {:.1} s before timing):", prepared.as_secs_f64());
    println!("{:<44} {:>12} {:>16}", "", "ready ms", "first call ms");
    println!("{:<44} {:>12.0} {:>16.0}", "the service's way (source, platform)", ms(service.0), ms(service.1));
    println!("{:<44} {:>12.0} {:>16.0}", "a component of its own (build, compile)", ms(component.0), ms(component.1));
    println!("edit to first call: {:.1}× faster", component.1.as_secs_f64() / service.1.as_secs_f64());
    Ok(())
}

fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1e3
}

async fn new_campaign(api: &Api) -> anyhow::Result<String> {
    let campaign = api.call(reqwest::Method::POST, "/campaigns", Some(json!({"name": "edit bench"}))).await?;
    Ok(campaign["id"].as_str().context("campaign id")?.to_owned())
}

/// Polls the strategy until its latest version is ready; its phases seen.
async fn wait_until_ready(api: &Api, id: &str) -> anyhow::Result<String> {
    let mut phases: Vec<String> = Vec::new();
    loop {
        let view = api.call(reqwest::Method::GET, &format!("/strategies/{id}"), None).await?;
        let status = view["latest"]["status"].as_str().unwrap_or_default().to_owned();
        let phase = view["latest"]["phase"].as_str().map_or(status.clone(), str::to_owned);
        if phases.last() != Some(&phase) {
            phases.push(phase);
        }
        match status.as_str() {
            "ready" => return Ok(phases.join(" → ")),
            "failed" => bail!("the strategy failed to build: {view}"),
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

/// Imports one contact and waits for its job: DATA_LOAD's first call.
async fn first_call(api: &Api, campaign: &str) -> anyhow::Result<()> {
    let csv = "object_id,external_id,name,email,phone,amount_due\nC-1,U-1,Ann Lee,ann@example.com,+15550100,120.50\n";
    let job = api.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", csv.into()).await?;
    let id = job["id"].as_str().with_context(|| format!("import refused: {job}"))?.to_owned();
    loop {
        let job = api.call(reqwest::Method::GET, &format!("/imports/{id}"), None).await?;
        if !["queued", "running"].contains(&job["status"].as_str().unwrap_or_default()) {
            if job["accepted"] != 1 {
                bail!("the contact was not imported: {job}");
            }
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}
