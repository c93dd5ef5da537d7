//! Contact import through the HTTP API, end to end (upload → job done), on
//! SQLite and PostgreSQL, with no strategy, a no-op strategy and the spec's
//! data-load strategy, so the cost of each layer is visible as a ratio to
//! the no-strategy import on the same backend. One more no-strategy import
//! runs on a database whose analytics rollup triggers (migration 0011) are
//! dropped, so what the triggers cost the import path shows in the same run.
//! The spec import's campaign is then exported (CSV, JSON Lines) through the
//! API, timed and with the process's peak memory growth, beside the same
//! contacts read into memory at once (what the export did before it was
//! written a chunk at a time). On PostgreSQL, the anchor: the database's
//! own bulk load (`COPY`) of the same CSV into the same contacts table,
//! and our first import's rate as a ratio to it.
//!
//! Each import also prints the machine's CPU over the import (every
//! process: the service, PostgreSQL, the client): cores busy on average,
//! and core-µs per contact beside the budget the target leaves, 30 s of
//! every core for a million contacts.
//!
//!   cargo run --release -p stratagem-bench --bin import-bench
//!
//! Environment: IMPORT_ROWS (default 100000), IMPORT_BACKENDS (default
//! sqlite,postgres), IMPORT_ONLY (a comma list of none, bare, noop, spec:
//! the imports to run, for profiling one; ratios are then to the first
//! one run), STRATAGEM_TEST_POSTGRES (default
//! postgres://postgres@127.0.0.1:5432), STRATAGEM_COMPONENTIZE_PY.

// Not every program uses every helper.
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use serde_json::json;
use stratagem_api::StrategyService;
use stratagem_domain::contact_file::{self, CsvExport, FileFormat};
use stratagem_domain::Contact;
use stratagem_runtime::{Runtime, RuntimeConfig};
use support::{database, repo, start, Api, CpuUse, MachineCpu};

fn csv(rows: usize) -> Vec<u8> {
    let mut out = String::from("object_id,external_id,name,email,phone,amount_due,due_date\n");
    for index in 0..rows {
        out.push_str(&format!("C-{index:08},U-{index},Person {index},p{index}@example.com,+1555{index:07},{}.50,2026-12-01\n", index % 900 + 100));
    }
    out.into_bytes()
}

/// What an import does with its file before the job starts: check it
/// whole (`count_rows`), against reading every row (`read_rows`, what the
/// request did before), in the same run; the best of three each.
fn file_check(body: &[u8]) {
    let best = |pass: &dyn Fn() -> u64| {
        (0..3)
            .map(|_| {
                let started = Instant::now();
                let rows = pass();
                (started.elapsed(), rows)
            })
            .min()
            .expect("three runs")
    };
    let limit = body.len() as u64;
    let (counted, rows) = best(&|| contact_file::count_rows(FileFormat::Csv, body, limit).expect("the bench's file is valid"));
    let (read, _) = best(&|| {
        let mut rows = 0;
        contact_file::read_rows(FileFormat::Csv, body, limit, |_| {
            rows += 1;
            std::ops::ControlFlow::Continue(())
        })
        .expect("the bench's file is valid");
        rows
    });
    println!(
        "file check before the job: count_rows {:.0} ms, read_rows {:.0} ms ({rows} rows; × read_rows {:.2})",
        counted.as_secs_f64() * 1e3,
        read.as_secs_f64() * 1e3,
        counted.as_secs_f64() / read.as_secs_f64()
    );
}

/// What one import measured.
struct Imported {
    /// Contacts per second, upload to job done.
    rate: f64,
    /// Peak memory growth in MiB (the client's copy of the file included).
    memory: u64,
    cpu: CpuUse,
    campaign: String,
}

async fn import(api: &Api, strategy: Option<&str>, body: &[u8], rows: usize) -> anyhow::Result<Imported> {
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
    let before = reset_peak_memory()?;
    let cpu = MachineCpu::start()?;
    let started = Instant::now();
    let job = api.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", body.to_vec()).await?;
    let id = job["id"].as_str().with_context(|| format!("import rejected: {job}"))?.to_owned();
    loop {
        let job = api.call(reqwest::Method::GET, &format!("/imports/{id}"), None).await?;
        if !["queued", "running"].contains(&job["status"].as_str().unwrap_or_default()) {
            let done = job["accepted"].as_u64().unwrap_or(0) as usize;
            if done != rows {
                bail!("imported {done} of {rows}: {}", job["report"]);
            }
            let rate = rows as f64 / started.elapsed().as_secs_f64();
            let (cpu, memory) = (cpu.stop()?, memory_kib("VmHWM:")?.saturating_sub(before) >> 10);
            return Ok(Imported { rate, memory, cpu, campaign });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Resets the process's peak resident memory (Linux `clear_refs` 5) and
/// returns what is resident now, in KiB.
fn reset_peak_memory() -> anyhow::Result<u64> {
    std::fs::write("/proc/self/clear_refs", "5")?;
    memory_kib("VmRSS:")
}

fn memory_kib(field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|line| line.starts_with(field)).with_context(|| format!("{field} in /proc/self/status"))?;
    Ok(line[field.len()..].trim().trim_end_matches(" kB").parse()?)
}

/// Downloads a campaign's export, counting its lines as they arrive, and
/// returns contacts per second and the peak memory growth in MiB.
async fn export(api: &Api, campaign: &str, format: &str, rows: usize) -> anyhow::Result<(f64, u64)> {
    let before = reset_peak_memory()?;
    let started = Instant::now();
    let reply = api
        .http
        .get(format!("{}/api/campaigns/{campaign}/contacts/export?format={format}", api.base))
        .bearer_auth(&api.key)
        .send()
        .await?;
    if !reply.status().is_success() {
        bail!("export: {}", reply.status());
    }
    let mut body = reply.bytes_stream();
    let mut lines = 0;
    while let Some(chunk) = body.next().await {
        lines += chunk?.iter().filter(|byte| **byte == b'\n').count();
    }
    let expected = rows + usize::from(format == "csv");
    if lines != expected {
        bail!("the {format} export has {lines} lines, not {expected}");
    }
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    Ok((rate, (memory_kib("VmHWM:")?.saturating_sub(before)) >> 10))
}

/// The same contacts held in memory at once and written as one CSV, as the
/// export did before it went a chunk at a time.
async fn export_in_memory(api: &Api, campaign: &str, rows: usize) -> anyhow::Result<(f64, u64)> {
    let before = reset_peak_memory()?;
    let started = Instant::now();
    let contacts: Vec<Contact> = api.store.contacts().all_contacts(&api.tenant, campaign).await?.into_iter().map(|stored| stored.contact).collect();
    let export = CsvExport::new(contacts.iter().flat_map(|contact| contact.parameters.keys().map(|key| (key.clone(), false))).collect());
    let mut out = Vec::new();
    export.write_header(&mut out);
    export.write_rows(&contacts, &mut out);
    if contacts.len() != rows {
        bail!("read {} contacts, not {rows}", contacts.len());
    }
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    drop((contacts, out));
    Ok((rate, (memory_kib("VmHWM:")?.saturating_sub(before)) >> 10))
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

/// PostgreSQL's own bulk load of the same CSV into the same contacts table
/// (indexes, rollup triggers and all), as the anchor for our import: one
/// `psql` session copies the file into a staging table and inserts its rows
/// as contacts of a new campaign, in one transaction. Contacts per second,
/// start of `psql` to its end.
async fn copy_anchor(api: &Api, url: &str, body: &[u8], rows: usize) -> anyhow::Result<f64> {
    let campaign = api.call(reqwest::Method::POST, "/campaigns", Some(json!({"name": "bench: COPY"}))).await?;
    let campaign = campaign["id"].as_str().context("campaign id")?.to_owned();
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("contacts.csv");
    std::fs::write(&file, body)?;
    let now = chrono::Utc::now().timestamp_micros();
    let script = format!(
        "CREATE TEMP TABLE staged (object_id text, external_id text, name text, email text, phone text, amount_due text, due_date text);\n\
         \\copy staged FROM '{}' WITH (FORMAT csv, HEADER true)\n\
         INSERT INTO contacts (id, tenant_id, campaign_id, object_id, external_id, name, email, phone, parameters, current_stage, \
           internal_data, results, result_flag, result_datetime, communication_count, last_error, created_at, updated_at) \
         SELECT 'copy-' || object_id, '{tenant}', '{campaign}', object_id, external_id, name, email, phone, \
           json_build_object('amount_due', amount_due, 'due_date', due_date)::text, NULL, '{{}}', '{{}}', NULL, NULL, 0, NULL, {now}, {now} \
         FROM staged;\n",
        file.display(),
        tenant = api.tenant,
    );
    let script_file = dir.path().join("copy.sql");
    std::fs::write(&script_file, script)?;
    let started = Instant::now();
    let done = std::process::Command::new("psql")
        .args(["-q", "-X", "-1", "-v", "ON_ERROR_STOP=1", "-d", url, "-f"])
        .arg(&script_file)
        .output()
        .context("running psql (PostgreSQL's client) for the COPY anchor")?;
    let elapsed = started.elapsed();
    if !done.status.success() {
        bail!("the COPY anchor failed: {}", String::from_utf8_lossy(&done.stderr));
    }
    let copied = api.store.contacts().all_contacts(&api.tenant, &campaign).await?.len();
    if copied != rows {
        bail!("COPY loaded {copied} contacts, not {rows}");
    }
    Ok(rows as f64 / elapsed.as_secs_f64())
}

/// Lets PostgreSQL finish the work the step before left it (dirty pages,
/// the new rows autovacuum would visit) before a timed step, so that no
/// step, ours or the anchor, pays for the one before it.
fn settle(url: &str) -> anyhow::Result<()> {
    if !url.starts_with("postgres") {
        return Ok(());
    }
    let done = std::process::Command::new("psql")
        .args(["-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", "VACUUM ANALYZE", "-c", "CHECKPOINT"])
        .output()
        .context("running psql (PostgreSQL's client) to settle the database")?;
    if !done.status.success() {
        bail!("settling the database failed: {}", String::from_utf8_lossy(&done.stderr));
    }
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
    let only = std::env::var("IMPORT_ONLY").ok();
    let only: Option<Vec<&str>> = only.as_deref().map(|list| list.split(',').collect());
    if std::env::var_os("STRATAGEM_COMPONENTIZE_PY").is_none() {
        std::env::set_var("STRATAGEM_COMPONENTIZE_PY", repo().join(".venv/bin/componentize-py"));
    }
    let dir = tempfile::tempdir()?;
    let runtime = Arc::new(Runtime::new(RuntimeConfig { cache_dir: dir.path().join("cache"), perf_map: support::perf_map(), ..RuntimeConfig::default() })?);
    let builder = support::builder().with_cache(dir.path().join("builds"));
    let body = csv(rows);
    println!("{rows} contacts per import ({} MiB of CSV), upload to job done", body.len() >> 20);
    file_check(&body);
    let cores = std::thread::available_parallelism()?.get();
    println!("CPU budget of the target (1M in 30 s on {cores} cores): {:.0} core-µs per contact", 30e6 * cores as f64 / 1e6);
    println!(
        "{:<10} {:<34} {:>12} {:>16} {:>16} {:>11} {:>16}",
        "backend", "strategy", "contacts/s", "× no strategy", "peak MiB growth", "cores busy", "core-µs/contact"
    );
    for backend in backends.split(',') {
        let url = database(backend, dir.path())?;
        let api = start(&url, Arc::new(StrategyService::new(runtime.clone(), builder.clone()))).await?;
        let (mut baseline, mut exported) = (None, None);
        for (name, label, strategy) in [
            ("none", "none", None),
            ("bare", "none, rollup triggers dropped", None),
            ("noop", "no-op (return contact)", Some("host/bench/strategies/noop.py")),
            ("spec", "spec data load", Some("examples/spec/data_load.py")),
        ] {
            if only.as_ref().is_some_and(|only| !only.contains(&name)) {
                continue;
            }
            let imported = if name == "bare" {
                let bare_url = database(backend, dir.path())?;
                let bare = start(&bare_url, Arc::new(StrategyService::new(runtime.clone(), builder.clone()))).await?;
                drop_rollup_triggers(&bare_url, backend).await?;
                settle(&bare_url)?;
                let imported = import(&bare, None, &body, rows).await?;
                drop_database(&bare_url);
                imported
            } else {
                settle(&url)?;
                let imported = import(&api, strategy, &body, rows).await?;
                exported = Some(imported.campaign.clone());
                imported
            };
            let Imported { rate, memory, cpu, .. } = imported;
            let base = *baseline.get_or_insert(rate);
            println!(
                "{backend:<10} {label:<34} {rate:>12.0} {:>16.2} {memory:>16} {:>5.2} of {:<2} {:>16.0}",
                rate / base,
                cpu.cores_busy,
                cpu.cores,
                cpu.core_seconds * 1e6 / rows as f64
            );
        }
        if backend == "postgres" {
            settle(&url)?;
            let copy = copy_anchor(&api, &url, &body, rows).await?;
            let ours = baseline.map_or(String::from("-"), |ours| format!("{:.2}", ours / copy));
            println!("{backend:<10} {:<34} {copy:>12.0}   our first import above is {ours}× this", "COPY (PostgreSQL's bulk load)");
        }
        // The last import's campaign: the spec strategy's, with a communication per contact.
        let Some(campaign) = exported else {
            drop_database(&url);
            continue;
        };
        println!("{:<10} {:<34} {:>12} {:>16}", "backend", "export of the spec campaign", "contacts/s", "peak MiB growth");
        for (label, result) in [
            ("CSV, through the API", export(&api, &campaign, "csv", rows).await?),
            ("JSON Lines, through the API", export(&api, &campaign, "jsonl", rows).await?),
            ("CSV, all contacts held at once", export_in_memory(&api, &campaign, rows).await?),
        ] {
            println!("{backend:<10} {label:<34} {:>12.0} {:>16}", result.0, result.1);
        }
        drop_database(&url);
    }
    Ok(())
}
