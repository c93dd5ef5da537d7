//! The campaign analytics panel on a large campaign: the metrics overview
//! and the stage/status distributions by period, timed against counting the
//! campaign's contacts (the cheapest query over the same rows), measured in
//! the same run.
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let contacts: usize = std::env::var("ANALYTICS_CONTACTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let backends = std::env::var("ANALYTICS_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let dir = tempfile::tempdir()?;
    let start = chrono::DateTime::parse_from_rfc3339("2026-10-01T00:00:00Z")?.with_timezone(&chrono::Utc);
    println!("{contacts} contacts, one communication each, over 60 days");
    println!("{:<10} {:>12} {:>14} {:>12} {:>16} {:>16}", "backend", "load s", "count ms", "overview ms", "by stage/day ms", "by status/week ms");
    for backend in backends.split(',').map(str::trim) {
        let store = Store::connect(&database(backend, dir.path())?).await?;
        let (tenant, _) = store.create_tenant("bench").await?;
        let campaign = store
            .create_campaign(&tenant, NewCampaign { name: "analytics".into(), description: String::new(), llm_integration_id: None, llm_model: None, result_fields: Vec::new() })
            .await?;
        let loading = Instant::now();
        let mut batch = Vec::with_capacity(500);
        for index in 0..contacts {
            batch.push((contact(index, start), None));
            if batch.len() == 500 || index + 1 == contacts {
                store.upsert_contacts(&tenant, &campaign.id, &batch).await?;
                batch.clear();
            }
        }
        let load = loading.elapsed().as_secs_f64();
        let to = start + chrono::Duration::days(61);
        // Warm the caches once, as a panel that is open would have.
        store.campaign_overview(&tenant, &campaign.id).await?;
        let timer = Instant::now();
        let total = store.count_contacts(&tenant, &campaign.id).await?;
        let count = millis(timer);
        let timer = Instant::now();
        let overview = store.campaign_overview(&tenant, &campaign.id).await?;
        let overview_ms = millis(timer);
        let timer = Instant::now();
        store.communication_slots(&tenant, &campaign.id, DistributionKey::Stage, start, to).await?;
        let by_stage = millis(timer);
        let timer = Instant::now();
        store.communication_slots(&tenant, &campaign.id, DistributionKey::Status, start, to).await?;
        let by_status = millis(timer);
        assert_eq!((total, overview.total_contacts), (contacts as i64, contacts as i64));
        println!(
            "{backend:<10} {load:>12.1} {count:>14.1} {overview_ms:>8.1} ({:.1}x) {by_stage:>10.1} ({:.1}x) {by_status:>10.1} ({:.1}x)",
            overview_ms / count,
            by_stage / count,
            by_status / count
        );
        store.close().await;
    }
    Ok(())
}
