//! The analytics panel reads rollup counters that database triggers keep
//! in step with contacts and communications (migration 0011). Each test
//! drives one write path — the store's import upsert, a re-import that
//! replaces contacts and their communications, the engine running a
//! campaign (claims, sessions ended, A/B labels, results), direct updates
//! and deletes — and then checks every counter, and the panel's answers,
//! against a GROUP BY over the base tables.

use std::collections::BTreeMap;

use serde_json::json;
use sqlx::{AnyPool, Row};
use stratagem_domain::{Communication, CommunicationState, CommunicationStatus, Contact};
use stratagem_store::{DistributionKey, Store};

use crate::both_backends;
use crate::support::{App, Background, Backend, Client};

both_backends!(
    works_when_imports_and_reimports_keep_the_rollups_exact,
    works_when_the_engine_runs_a_campaign_and_the_rollups_stay_exact,
    works_when_flags_change_and_rows_are_deleted_directly,
);

type Counts = BTreeMap<Vec<String>, Vec<i64>>;

/// `query`'s rows as key columns → count columns (all read as text / i64).
async fn counts(connection: &mut sqlx::AnyConnection, query: &str, tenant: &str, campaign: &str, keys: usize) -> Counts {
    let rows = sqlx::query(query).bind(tenant).bind(campaign).fetch_all(connection).await.expect(query);
    rows.iter()
        .map(|row| {
            let key = (0..keys).map(|i| row.try_get::<Option<String>, _>(i).expect("key").unwrap_or_else(|| "<null>".into())).collect();
            let values = (keys..row.len()).map(|i| row.try_get::<i64, _>(i).expect("count")).collect();
            (key, values)
        })
        .collect()
}

/// Every rollup counter, summed over shards, equals a recount of the base
/// tables; and the store's panel answers equal the pre-rollup queries.
pub(crate) async fn assert_exact(app: &App, pool: &AnyPool, tenant: &str, campaign: &str) {
    let pairs = [
        (
            "SELECT CASE WHEN staged = 1 THEN stage END, CAST(result AS TEXT), CAST(session AS TEXT), CAST(SUM(contacts) AS BIGINT) \
             FROM contact_rollups WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY staged, stage, result, session HAVING SUM(contacts) <> 0",
            "SELECT current_stage, CAST(COALESCE(result_flag, -1) AS TEXT), CASE WHEN last_session_at IS NULL THEN '0' ELSE '1' END, COUNT(*) \
             FROM contacts WHERE tenant_id = $1 AND campaign_id = $2 \
             GROUP BY current_stage, COALESCE(result_flag, -1), CASE WHEN last_session_at IS NULL THEN '0' ELSE '1' END",
            3,
        ),
        (
            "SELECT CAST(slot AS TEXT), stage_name, status, CAST(SUM(communications) AS BIGINT) FROM slot_rollups \
             WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY slot, stage_name, status HAVING SUM(communications) <> 0",
            "SELECT CAST(start_date / 900000000 AS TEXT), stage_name, status, COUNT(*) FROM communications \
             WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY start_date / 900000000, stage_name, status",
            3,
        ),
        (
            "SELECT stage_name, alternative, CAST(SUM(communications) AS BIGINT), CAST(SUM(successful) AS BIGINT) FROM alternative_rollups \
             WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY stage_name, alternative \
             HAVING SUM(communications) <> 0 OR SUM(successful) <> 0",
            "SELECT m.stage_name, m.alternative, COUNT(*), COALESCE(SUM(CASE WHEN c.result_flag = 1 THEN 1 ELSE 0 END), 0) \
             FROM communications m JOIN contacts c ON c.id = m.contact_id \
             WHERE m.tenant_id = $1 AND m.campaign_id = $2 AND m.alternative IS NOT NULL GROUP BY m.stage_name, m.alternative",
            2,
        ),
    ];
    // Counters and recount from one snapshot: a running engine (it marks
    // MISSED even before the campaign runs) may commit between two reads.
    let mut snapshot = pool.begin().await.expect("transaction");
    if app.database_url().starts_with("postgres") {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *snapshot).await.expect("isolation");
    }
    for (rollup, recount, keys) in pairs {
        let rolled = counts(&mut snapshot, rollup, tenant, campaign, keys).await;
        let recounted = counts(&mut snapshot, recount, tenant, campaign, keys).await;
        assert_eq!(rolled, recounted, "{rollup}");
    }
    snapshot.rollback().await.expect("end of snapshot");

    // The overview, as the grouped scans before the rollups computed it.
    let overview = app.store.analytics().campaign_overview(tenant, campaign).await.expect("overview");
    let totals = sqlx::query(
        "SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN result_flag IS NOT NULL OR last_session_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS processed, \
         COALESCE(SUM(CASE WHEN result_flag IS NOT NULL THEN 1 ELSE 0 END), 0) AS completed, \
         COALESCE(SUM(CASE WHEN result_flag = 1 THEN 1 ELSE 0 END), 0) AS successful FROM contacts WHERE tenant_id = $1 AND campaign_id = $2",
    )
    .bind(tenant)
    .bind(campaign)
    .fetch_one(pool)
    .await
    .expect("totals");
    let expected: Vec<i64> = ["total", "processed", "completed", "successful"].iter().map(|c| totals.try_get(*c).expect("n")).collect();
    assert_eq!(
        vec![overview.total_contacts, overview.processed_contacts, overview.completed_contacts, overview.successful_contacts],
        expected
    );
    let stages = counts(
        &mut pool.acquire().await.expect("connection"),
        "SELECT current_stage, COUNT(*), COALESCE(SUM(CASE WHEN result_flag = 1 THEN 1 ELSE 0 END), 0) FROM contacts \
         WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY current_stage",
        tenant,
        campaign,
        1,
    )
    .await;
    let by_stage: Counts = overview
        .by_stage
        .iter()
        .map(|s| (vec![s.stage.clone().unwrap_or_else(|| "<null>".into())], vec![s.contacts, s.successful]))
        .collect();
    assert_eq!(by_stage, stages);
    assert!(overview.by_stage.windows(2).all(|w| w[0].contacts >= w[1].contacts), "{:?}", overview.by_stage);

    // Distributions over a range whose ends are not on slot boundaries.
    let now = chrono::Utc::now();
    let (from, to) = (now - chrono::Duration::seconds(30 * 86_400 + 437), now + chrono::Duration::seconds(30 * 86_400 + 611));
    for (key, column) in [(DistributionKey::Stage, "stage_name"), (DistributionKey::Status, "status")] {
        let slots: Counts = app
            .store
            .analytics().communication_slots(tenant, campaign, key, from, to)
            .await
            .expect("slots")
            .into_iter()
            .map(|(start, name, n)| (vec![start.timestamp_micros().to_string(), name], vec![n]))
            .collect();
        let rows = sqlx::query(&format!(
            "SELECT (start_date / 900000000) * 900000000 AS slot, {column} AS name, COUNT(*) AS n FROM communications \
             WHERE tenant_id = $1 AND campaign_id = $2 AND start_date >= $3 AND start_date < $4 GROUP BY start_date / 900000000, {column}"
        ))
        .bind(tenant)
        .bind(campaign)
        .bind(from.timestamp_micros())
        .bind(to.timestamp_micros())
        .fetch_all(pool)
        .await
        .expect("recount");
        let recount: Counts = rows
            .iter()
            .map(|row| {
                (vec![row.try_get::<i64, _>("slot").expect("slot").to_string(), row.try_get("name").expect("name")], vec![row.try_get("n").expect("n")])
            })
            .collect();
        assert_eq!(slots, recount, "{column}");
    }
}

pub(crate) async fn pool(app: &App) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPool::connect(app.database_url()).await.expect("pool")
}

async fn tenant_of(app: &App, client: &Client) -> String {
    app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant")
}

fn communication(stage: &str, start: chrono::DateTime<chrono::Utc>, status: CommunicationStatus, alternative: Option<&str>) -> Communication {
    Communication {
        id: None,
        name: "Reminder".into(),
        stage_name: stage.into(),
        start_date: start,
        end_date: None,
        status: CommunicationState { status, detail: None, updated_at: None },
        flagged: false,
        alternative: alternative.map(str::to_owned),
        parameters: Default::default(),
    }
}

/// Contacts with and without a stage (and one whose stage is ''), each
/// flag state, communications in several slots, some with A/B labels.
fn contacts(round: usize) -> Vec<(Contact, Option<serde_json::Value>)> {
    let base = chrono::Utc::now() - chrono::Duration::days(3);
    (0..40)
        .map(|i| {
            let mut contact: Contact =
                serde_json::from_value(json!({"object_id": format!("C{i}"), "external_id": format!("U{i}"), "name": format!("P{i}")})).expect("contact");
            contact.current_stage = match (i + round) % 5 {
                0 => None,
                1 => Some(String::new()),
                n => Some(format!("Stage {n}")),
            };
            contact.result_flag = [None, Some(true), Some(false)][(i + round) % 3];
            for k in 0..(i + round) % 3 {
                let status = [CommunicationStatus::Planned, CommunicationStatus::Completed, CommunicationStatus::Missed][(i + k) % 3];
                let start = base + chrono::Duration::minutes(((i * 37 + k * 200 + round * 11) % 5000) as i64);
                let label = [None, Some("default"), Some("B")][(i + k + round) % 3];
                contact.communications.push(communication(&format!("Stage {}", k + 2), start, status, label));
            }
            (contact, None)
        })
        .collect()
}

async fn works_when_imports_and_reimports_keep_the_rollups_exact(backend: Backend) {
    // No engine: nothing else writes between a counter and its recount.
    let app = App::start_with(backend, Background::Off).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Rollups").await;
    let tenant = tenant_of(&app, &client).await;
    let pool = pool(&app).await;
    let store: &Store = &app.store;

    store.contacts().upsert_contacts(&tenant, &campaign, &contacts(0)).await.expect("import");
    assert_exact(&app, &pool, &tenant, &campaign).await;
    // A re-import updates every contact: stages, flags, and communications
    // replaced (more, fewer, other labels).
    store.contacts().upsert_contacts(&tenant, &campaign, &contacts(1)).await.expect("re-import");
    assert_exact(&app, &pool, &tenant, &campaign).await;
    let mut mixed = contacts(2);
    mixed.truncate(25);
    store.contacts().upsert_contacts(&tenant, &campaign, &mixed).await.expect("partial re-import");
    assert_exact(&app, &pool, &tenant, &campaign).await;

    // Another campaign's writes never leak into this one's counters.
    let other = client.campaign("Other").await;
    store.contacts().upsert_contacts(&tenant, &other, &contacts(3)).await.expect("other import");
    assert_exact(&app, &pool, &tenant, &campaign).await;
    assert_exact(&app, &pool, &tenant, &other).await;

    // And an import through the API, with a DATA_LOAD strategy.
    client.strategy(&campaign, "DATA_LOAD", "examples/simulated/data_load.py").await;
    let csv = "object_id,external_id,name,email,phone\nC1,U1,Ann,a@example.com,+1\nN1,U9,Nia,n@example.com,+9\n";
    let job = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", csv.as_bytes().to_vec()).await;
    let job = client.wait_for_import(job.body["id"].as_str().expect("job")).await;
    assert_eq!((job["accepted"].as_i64(), job["updated"].as_i64()), (Some(1), Some(1)), "{job}");
    assert_exact(&app, &pool, &tenant, &campaign).await;
}

async fn works_when_the_engine_runs_a_campaign_and_the_rollups_stay_exact(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let tenant = tenant_of(&app, &client).await;
    let pool = pool(&app).await;
    let campaign = client
        .post("/campaigns", json!({"name": "Simulated collections", "result_fields": [{"code": "OutcomeStatus", "name": "Outcome"}]}))
        .await;
    let campaign = campaign.body["id"].as_str().expect("id").to_owned();
    for stage in [
        json!({"name": "1. First contact", "channel": "SIMULATED", "alternatives": [{"label": "B", "weight": 50, "channel": "SIMULATED"}]}),
        json!({"name": "2. Retry", "channel": "SIMULATED"}),
    ] {
        assert_eq!(client.post(&format!("/campaigns/{campaign}/stages"), stage).await.status, 201);
    }
    client.strategy(&campaign, "DATA_LOAD", "examples/simulated/data_load.py").await;
    client.strategy(&campaign, "AGGREGATION", "examples/simulated/aggregation.py").await;
    let past = (chrono::Utc::now() - chrono::Duration::hours(5)).format("%Y-%m-%dT%H:%M:%S");
    let mut csv = String::from("object_id,external_id,name,email,phone,persona,contact_after\n");
    for (i, persona) in ["paid", "refused", "no_response", "paid", "paid", "refused", "no_response", "paid"].iter().enumerate() {
        let after = if i % 4 == 3 { past.to_string() } else { String::new() };
        csv.push_str(&format!("X{i},U{i},Person {i},x{i}@example.com,+{i},{persona},{after}\n"));
    }
    let job = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", csv.into_bytes()).await;
    let job = client.wait_for_import(job.body["id"].as_str().expect("job")).await;
    assert_eq!(job["accepted"], 8, "{job}");
    assert_exact(&app, &pool, &tenant, &campaign).await;

    for status in ["CONFIGURED", "RUNNING"] {
        let reply = client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let mut finished = false;
    for _ in 0..600 {
        if client.get(&format!("/campaigns/{campaign}")).await.body["status"] == "FINISHED" {
            finished = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(finished, "the campaign finishes");
    assert_exact(&app, &pool, &tenant, &campaign).await;
    let overview = client.get(&format!("/campaigns/{campaign}/analytics/overview")).await.body;
    let labelled: i64 = overview["by_alternative"].as_array().expect("by_alternative").iter().map(|r| r["communications"].as_i64().expect("n")).sum();
    assert!(labelled >= 6, "sent communications carry their A/B label: {overview}");
    assert!(overview["by_alternative"].as_array().expect("rows").iter().any(|r| r["successful"].as_i64() > Some(0)), "{overview}");
}

async fn works_when_flags_change_and_rows_are_deleted_directly(backend: Backend) {
    // No engine: nothing else writes between a counter and its recount.
    let app = App::start_with(backend, Background::Off).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Rollups").await;
    let tenant = tenant_of(&app, &client).await;
    let pool = pool(&app).await;
    app.store.contacts().upsert_contacts(&tenant, &campaign, &contacts(0)).await.expect("import");

    let statements = [
        // Flags turn true and stop being true: labelled communications move.
        "UPDATE contacts SET result_flag = 1 WHERE tenant_id = $1 AND campaign_id = $2 AND object_id IN ('C0', 'C3', 'C4')",
        "UPDATE contacts SET result_flag = NULL, current_stage = 'Moved' WHERE tenant_id = $1 AND campaign_id = $2 AND object_id IN ('C1', 'C7')",
        "UPDATE contacts SET last_session_at = 1 WHERE tenant_id = $1 AND campaign_id = $2 AND object_id IN ('C2', 'C5')",
        // Communications change slot, stage, status and label.
        "UPDATE communications SET status = 'IN_PROGRESS', alternative = 'C' WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'PLANNED'",
        "UPDATE communications SET start_date = start_date + 3600000000, stage_name = 'Stage 9' WHERE tenant_id = $1 AND campaign_id = $2 AND position = 1",
        "UPDATE communications SET alternative = NULL WHERE tenant_id = $1 AND campaign_id = $2 AND alternative = 'default'",
        // Deletes: a communication, then contacts with theirs.
        "DELETE FROM communications WHERE tenant_id = $1 AND campaign_id = $2 AND position = 0 AND contact_id IN \
         (SELECT id FROM contacts WHERE object_id IN ('C4', 'C5'))",
        "DELETE FROM contacts WHERE tenant_id = $1 AND campaign_id = $2 AND object_id IN ('C1', 'C2', 'C3', 'C10', 'C11')",
    ];
    for statement in statements {
        let done = sqlx::query(statement).bind(&tenant).bind(&campaign).execute(&pool).await.expect(statement);
        assert!(done.rows_affected() > 0, "{statement}");
        assert_exact(&app, &pool, &tenant, &campaign).await;
    }
}
