//! The campaign analytics panel on a large campaign: the metrics overview
//! and the stage/status distributions by period, timed against counting the
//! campaign's contacts (the cheapest query over the same rows), measured in
//! the same run. The panel reads the rollup counters of migration 0011; the
//! same answers computed from the base tables (the queries the panel ran
//! before, a grouped scan of the contacts, the A/B join over the
//! communications and a grouped range scan of the timeline) are timed in the
//! same run too, so the rollups' gain shows as a ratio.
//!
//!   cargo run --release -p stratagem-bench --bin analytics-bench
//!
//! Environment: ANALYTICS_CONTACTS (default 1000000), ANALYTICS_BACKENDS
//! (default sqlite,postgres), STRATAGEM_TEST_POSTGRES.

// Not every program uses every helper.
#[allow(dead_code)]
mod support;

use std::time::Instant;

use stratagem_domain::{Communication, CommunicationState, CommunicationStatus, Contact};
use stratagem_store::{DistributionKey, NewCampaign, Store};
use support::database;

const STAGES: [&str; 4] = ["1. Email reminder", "2. WhatsApp follow-up", "3. Payment reminder", "4. Human follow-up"];

/// A contact somewhere in a 60-day campaign: its stage, result and one
/// communication, spread deterministically.
fn contact(index: usize, start: chrono::DateTime<chrono::Utc>) -> Contact {
    let mut contact: Contact = serde_json::from_value(serde_json::json!({
        "object_id": format!("C-{index:08}"), "external_id": format!("U-{index}"), "name": format!("Person {index}"),
        "current_stage": STAGES[index % 4],
    }))
    .expect("contact");
    contact.result_flag = match index % 5 {
        0 | 1 => Some(true),
        2 => Some(false),
        _ => None,
    };
    let status = [CommunicationStatus::Completed, CommunicationStatus::Missed, CommunicationStatus::Planned][index % 3];
    contact.communications.push(Communication {
        id: None,
        name: "Reminder".into(),
        stage_name: STAGES[index % 4].into(),
        start_date: start + chrono::Duration::minutes((index % (60 * 24 * 60)) as i64),
        end_date: None,
        status: CommunicationState { status, detail: None, updated_at: None },
        flagged: false,
        alternative: None,
        parameters: Default::default(),
    });
    contact
}

fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Rounds each read is timed in; the median is reported.
const ROUNDS: usize = 5;

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let contacts: usize = std::env::var("ANALYTICS_CONTACTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let backends = std::env::var("ANALYTICS_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let dir = tempfile::tempdir()?;
    let start = chrono::DateTime::parse_from_rfc3339("2026-10-01T00:00:00Z")?.with_timezone(&chrono::Utc);
    println!("{contacts} contacts, one communication each, over 60 days");
    println!(
        "{:<10} {:>8} {:>9} {:>18} {:>18} {:>18} {:>12} {:>12} {:>14}",
        "backend", "load s", "count ms", "overview ms", "by stage/day ms", "by status/week ms", "scan: stages", "scan: A/B", "scan: by stage"
    );
    for backend in backends.split(',').map(str::trim) {
        let url = database(backend, dir.path())?;
        let store = Store::connect(&url).await?;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await?;
        let (tenant, _) = store.tenants().create_tenant("bench").await?;
        let campaign = store
            .campaigns().create_campaign(&tenant, NewCampaign { name: "analytics".into(), description: String::new(), llm_integration_id: None, llm_model: None, result_fields: Vec::new(), http_allowlist: Vec::new() }, Default::default())
            .await?;
        let loading = Instant::now();
        let mut batch = Vec::with_capacity(500);
        for index in 0..contacts {
            batch.push((contact(index, start), None));
            if batch.len() == 500 || index + 1 == contacts {
                store.contacts().upsert_contacts(&tenant, &campaign.id, &batch).await?;
                batch.clear();
            }
        }
        let load = loading.elapsed().as_secs_f64();
        let to = start + chrono::Duration::days(61);
        // Warm the caches once, as a panel that is open would have.
        store.analytics().campaign_overview(&tenant, &campaign.id).await?;
        store.analytics().communication_slots(&tenant, &campaign.id, DistributionKey::Stage, start, to).await?;
        // Each read is timed in ROUNDS interleaved rounds; the median counts.
        let (mut counts, mut overviews, mut stages_ms, mut statuses_ms) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut total, mut overview) = (0, None);
        for _ in 0..ROUNDS {
            let timer = Instant::now();
            total = store.analytics().count_contacts(&tenant, &campaign.id).await?;
            counts.push(millis(timer));
            let timer = Instant::now();
            overview = Some(store.analytics().campaign_overview(&tenant, &campaign.id).await?);
            overviews.push(millis(timer));
            let timer = Instant::now();
            store.analytics().communication_slots(&tenant, &campaign.id, DistributionKey::Stage, start, to).await?;
            stages_ms.push(millis(timer));
            let timer = Instant::now();
            store.analytics().communication_slots(&tenant, &campaign.id, DistributionKey::Status, start, to).await?;
            statuses_ms.push(millis(timer));
        }
        let overview = overview.expect("at least one round");
        let (count, overview_ms, by_stage, by_status) = (median(counts), median(overviews), median(stages_ms), median(statuses_ms));
        assert_eq!((total, overview.total_contacts), (contacts as i64, contacts as i64));
        // The base-table queries the panel ran before the rollups.
        let scan = |sql: &'static str| {
            let pool = pool.clone();
            let (tenant, campaign) = (tenant.clone(), campaign.id.clone());
            async move {
                let mut times = Vec::new();
                for _ in 0..ROUNDS {
                    let timer = Instant::now();
                    sqlx::query(sql)
                        .bind(&tenant)
                        .bind(&campaign)
                        .bind(start.timestamp_micros())
                        .bind(to.timestamp_micros())
                        .fetch_all(&pool)
                        .await?;
                    times.push(millis(timer));
                }
                anyhow::Ok(median(times))
            }
        };
        let stages = scan(
            "SELECT current_stage, COUNT(*) AS contacts, \
               COALESCE(SUM(CASE WHEN result_flag IS NOT NULL THEN 1 ELSE 0 END), 0) AS completed, \
               COALESCE(SUM(CASE WHEN result_flag = 1 THEN 1 ELSE 0 END), 0) AS successful, \
               COALESCE(SUM(CASE WHEN result_flag IS NOT NULL OR last_session_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS processed \
             FROM contacts WHERE tenant_id = $1 AND campaign_id = $2 AND $3 <= $4 GROUP BY current_stage",
        )
        .await?;
        let labels = scan(
            "SELECT m.stage_name, m.alternative, COUNT(*) AS communications, \
               COALESCE(SUM(CASE WHEN c.result_flag = 1 THEN 1 ELSE 0 END), 0) AS successful \
             FROM communications m JOIN contacts c ON c.id = m.contact_id \
             WHERE m.tenant_id = $1 AND m.campaign_id = $2 AND m.alternative IS NOT NULL AND $3 <= $4 \
             GROUP BY m.stage_name, m.alternative ORDER BY m.stage_name, m.alternative",
        )
        .await?;
        let timeline = scan(
            "SELECT (start_date / 900000000) AS slot, stage_name AS key, COUNT(*) AS n FROM communications \
             WHERE tenant_id = $1 AND campaign_id = $2 AND start_date >= $3 AND start_date < $4 \
             GROUP BY (start_date / 900000000), stage_name",
        )
        .await?;
        println!(
            "{backend:<10} {load:>8.1} {count:>9.1} {overview_ms:>10.1} ({:>5.2}x) {by_stage:>10.1} ({:>5.2}x) {by_status:>10.1} ({:>5.2}x) {stages:>12.1} {labels:>12.1} {timeline:>14.1}",
            overview_ms / count,
            by_stage / count,
            by_status / count
        );
        pool.close().await;
        store.close().await;
        if let Some(name) = url.strip_prefix("postgres://").and_then(|rest| rest.rsplit('/').next()) {
            let _ = std::process::Command::new("dropdb").args(["--force", "-h", "127.0.0.1", "-U", "postgres", name]).status();
        }
    }
    Ok(())
}
