//! Contact import through the HTTP API, end to end (upload → job done), on
//! SQLite and PostgreSQL, with no strategy, a no-op strategy and the spec's
//! data-load strategy, so the cost of each layer is visible as a ratio to
//! the no-strategy import on the same backend. One more no-strategy import
//! runs on a database whose analytics rollup triggers (migration 0011) are
//! dropped, so what the triggers cost the import path shows in the same run.
//!
//!   cargo run --release -p stratagem-bench --bin import-bench
//!
//! Environment: IMPORT_ROWS (default 100000), IMPORT_BACKENDS (default
//! sqlite,postgres), STRATAGEM_TEST_POSTGRES (default
//! postgres://postgres@127.0.0.1:5432), STRATAGEM_COMPONENTIZE_PY.

// Not every program uses every helper.
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use stratagem_api::{AppState, StrategyService};
use stratagem_runtime::{Builder, Runtime, RuntimeConfig};
use stratagem_store::Store;
use support::{database, repo};

struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
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
}

async fn start(url: &str, runtime: Arc<Runtime>, builder: Builder) -> anyhow::Result<Api> {
    let store = Store::connect(url).await?;
    let (_, key) = store.create_tenant("bench").await?;
    let state = AppState::new(store, Arc::new(StrategyService::new(runtime, builder)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, stratagem_api::app(state)).await });
    Ok(Api { base, key: key.key, http: reqwest::Client::new() })
}

fn csv(rows: usize) -> Vec<u8> {
    let mut out = String::from("object_id,external_id,name,email,phone,amount_due,due_date\n");
    for index in 0..rows {
        out.push_str(&format!("C-{index:08},U-{index},Person {index},p{index}@example.com,+1555{index:07},{}.50,2026-12-01\n", index % 900 + 100));
    }
    out.into_bytes()
}

/// Runs one import and returns contacts per second, upload to done.
async fn import(api: &Api, strategy: Option<&str>, body: &[u8], rows: usize) -> anyhow::Result<f64> {
    let campaign = api.call(reqwest::Method::POST, "/campaigns", Some(json!({"name": "bench"}))).await?;
    let campaign = campaign["id"].as_str().context("campaign id")?.to_owned();
    if let Some(file) = strategy {
        let source = std::fs::read_to_string(repo().join(file))?;
        let uploaded = api
            .call(reqwest::Method::POST, &format!("/campaigns/{campaign}/strategies"), Some(json!({"name": file, "type": "DATA_LOAD", "source": source})))
            .await?;
        let id = uploaded["id"].as_str().context("strategy id")?.to_owned();
        loop {
            let view = api.call(reqwest::Method::GET, &format!("/strategies/{id}"), None).await?;
            match view["latest"]["status"].as_str() {
                Some("ready") => break,
                Some("failed") => bail!("{file} failed to build: {view}"),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    let started = Instant::now();
    let reply = api
        .http
        .post(format!("{}/api/campaigns/{campaign}/imports", api.base))
        .bearer_auth(&api.key)
        .header("content-type", "text/csv")
        .body(body.to_vec())
        .send()
        .await?;
    let job: Value = reply.json().await?;
    let id = job["id"].as_str().with_context(|| format!("import rejected: {job}"))?.to_owned();
    loop {
        let job = api.call(reqwest::Method::GET, &format!("/imports/{id}"), None).await?;
        if job["status"] != "running" {
            let done = job["accepted"].as_u64().unwrap_or(0) as usize;
            if done != rows {
                bail!("imported {done} of {rows}: {}", job["report"]);
            }
            return Ok(rows as f64 / started.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Drops the analytics panel's rollup triggers (the write path before
/// migration 0011) from a migrated database.
async fn drop_rollup_triggers(url: &str, backend: &str) -> anyhow::Result<()> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await?;
    let list = if backend == "sqlite" {
        "SELECT name, tbl_name AS tbl FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%rollup%'"
    } else {
        "SELECT t.tgname::text AS name, c.relname::text AS tbl FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
         WHERE t.tgname LIKE '%rollup%'"
    };
    let triggers = sqlx::query(list).fetch_all(&pool).await?;
    if triggers.is_empty() {
        bail!("no rollup triggers found to drop");
    }
    for row in triggers {
        let (name, table): (String, String) = (row.try_get("name")?, row.try_get("tbl")?);
        let sql = if backend == "sqlite" { format!("DROP TRIGGER {name}") } else { format!("DROP TRIGGER {name} ON {table}") };
        sqlx::query(&sql).execute(&pool).await?;
    }
    pool.close().await;
    Ok(())
}

fn drop_database(url: &str) {
    if let Some(name) = url.strip_prefix("postgres://").and_then(|rest| rest.rsplit('/').next()) {
        let _ = std::process::Command::new("dropdb").args(["--force", "-h", "127.0.0.1", "-U", "postgres", name]).status();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: usize = std::env::var("IMPORT_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let backends = std::env::var("IMPORT_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    if std::env::var_os("STRATAGEM_COMPONENTIZE_PY").is_none() {
        std::env::set_var("STRATAGEM_COMPONENTIZE_PY", repo().join(".venv/bin/componentize-py"));
    }
    let dir = tempfile::tempdir()?;
    let runtime = Arc::new(Runtime::new(RuntimeConfig { cache_dir: dir.path().join("cache"), ..RuntimeConfig::default() })?);
    let builder = Builder::from_env().with_cache(dir.path().join("builds"));
    let body = csv(rows);
    println!("{rows} contacts per import ({} MiB of CSV), upload to job done", body.len() >> 20);
    println!("{:<10} {:<34} {:>12} {:>16}", "backend", "strategy", "contacts/s", "× no strategy");
    for backend in backends.split(',') {
        let url = database(backend, dir.path())?;
        let api = start(&url, runtime.clone(), builder.clone()).await?;
        let mut baseline = None;
        for (label, strategy) in [
            ("none", None),
            ("none, rollup triggers dropped", None),
            ("no-op (return contact)", Some("host/bench/strategies/noop.py")),
            ("spec data load", Some("examples/spec/data_load.py")),
        ] {
            let rate = if label.contains("dropped") {
                let bare_url = database(backend, dir.path())?;
                let bare = start(&bare_url, runtime.clone(), builder.clone()).await?;
                drop_rollup_triggers(&bare_url, backend).await?;
                let rate = import(&bare, None, &body, rows).await?;
                drop_database(&bare_url);
                rate
            } else {
                import(&api, strategy, &body, rows).await?
            };
            let base = *baseline.get_or_insert(rate);
            println!("{backend:<10} {label:<34} {rate:>12.0} {:>16.2}", rate / base);
        }
        drop_database(&url);
    }
    Ok(())
}
