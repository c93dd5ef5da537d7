//! Quotas the operator sets: going over is refused before anything is
//! written, with which quota, the use, what was asked and the limit; a
//! re-import of the same contacts always fits; a tenant's own quota
//! overrides the node's default, 0 being unlimited.

use serde_json::{json, Value};
use stratagem_domain::quota::Quotas;
use stratagem_store::QuotaSettings;

use crate::both_backends;
use crate::support::{App, Backend, Client, Tuning};

both_backends!(
    errors_when_a_tenant_would_exceed_its_quotas_and_nothing_is_written,
    works_when_a_tenants_own_quota_overrides_the_nodes_default,
    works_when_a_tenant_past_its_daily_fuel_waits_and_nothing_planned_is_lost,
    errors_when_a_tenant_would_store_more_than_its_storage_quota,
);

fn people(ids: &[&str]) -> String {
    let mut csv = String::from("object_id,external_id,name,email,phone\n");
    for id in ids {
        csv.push_str(&format!("{id},U-{id},Person {id},{id}@x.io,+1\n"));
    }
    csv
}

async fn import(client: &Client, campaign: &str, ids: &[&str]) -> (u16, Value) {
    let reply = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", people(ids).into_bytes()).await;
    if reply.status != 202 {
        return (reply.status, reply.body);
    }
    (202, client.wait_for_import(reply.body["id"].as_str().expect("job")).await)
}

async fn contacts(client: &Client, campaign: &str) -> i64 {
    client.get(&format!("/campaigns/{campaign}/contacts")).await.body["total"].as_i64().expect("total")
}

async fn errors_when_a_tenant_would_exceed_its_quotas_and_nothing_is_written(backend: Backend) {
    let app = App::start(backend).await;
    let (tenant, client) = app.tenant_with_id("Acme").await;
    app.store.tenants().set_quota_settings(&tenant, QuotaSettings { contacts: Some(3), campaigns: Some(1), ..Default::default() }).await.expect("quotas");

    let campaign = client.campaign("Collections").await;
    let refused = client.post("/campaigns", json!({"name": "Second"})).await;
    refused.problem(403);
    assert_eq!(refused.body["type"], "/problems/quota-exceeded");
    assert_eq!(refused.body["quota"], json!({"quota": "campaigns", "used": 1, "requested": 1, "limit": 1}));
    assert!(refused.body["detail"].as_str().expect("detail").starts_with("the tenant's campaigns quota is 1: it has 1"), "{}", refused.text);
    assert_eq!(client.get("/campaigns").await.body.as_array().map(Vec::len), Some(1), "nothing was created");

    let (status, job) = import(&client, &campaign, &["C1", "C2", "C3"]).await;
    assert_eq!((status, job["accepted"].as_i64()), (202, Some(3)), "up to the quota: {job}");
    let (status, job) = import(&client, &campaign, &["C1", "C2", "C3"]).await;
    assert_eq!((status, job["updated"].as_i64()), (202, Some(3)), "the same contacts again always fit: {job}");

    let (status, problem) = import(&client, &campaign, &["C1", "C4"]).await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["quota"], json!({"quota": "contacts", "used": 3, "requested": 1, "limit": 3}));
    let detail = problem["detail"].as_str().expect("detail");
    assert!(detail.contains("it has 3 (with imports in progress), and this file adds 1 new ones; nothing was imported"), "{detail}");
    assert_eq!(contacts(&client, &campaign).await, 3, "not even C1 was updated by the refused file");
}

async fn works_when_a_tenants_own_quota_overrides_the_nodes_default(backend: Backend) {
    let quotas = Quotas { contacts: Some(2), ..Quotas::default() };
    let app = App::start_tuned(backend, Tuning { quotas: Some(quotas), ..Tuning::default() }).await;
    let (tenant, client) = app.tenant_with_id("Acme").await;
    let campaign = client.campaign("Collections").await;
    let (status, problem) = import(&client, &campaign, &["C1", "C2", "C3"]).await;
    assert_eq!((status, problem["quota"]["limit"].as_u64()), (403, Some(2)), "the node's default: {problem}");

    // The operator lifts it for this tenant: 0 is unlimited.
    app.store.tenants().set_quota_settings(&tenant, QuotaSettings { contacts: Some(0), ..Default::default() }).await.expect("quotas");
    let (status, job) = import(&client, &campaign, &["C1", "C2", "C3"]).await;
    assert_eq!((status, job["accepted"].as_i64()), (202, Some(3)), "{job}");
    // Another tenant still has the default.
    let other = app.tenant("Other").await;
    let theirs = other.campaign("Theirs").await;
    assert_eq!(import(&other, &theirs, &["C1", "C2", "C3"]).await.0, 403);
}

fn total(usage: &Value, metric: &str) -> u64 {
    let rows = usage["rows"].as_array().expect("rows");
    rows.iter().filter(|row| row["metric"] == metric).map(|row| row["value"].as_u64().expect("value")).sum()
}

/// Reads `/usage` until `done` holds of it (the engine runs meanwhile).
async fn usage_when(client: &Client, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..600 {
        let usage = client.get("/usage").await.body;
        if done(&usage) {
            return usage;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("usage never got there: {}", client.get("/usage").await.text)
}

/// The communications' statuses of a contact.
async fn statuses(client: &Client, campaign: &str, object_id: &str) -> Vec<String> {
    let contact = client.get(&format!("/campaigns/{campaign}/contacts/{object_id}")).await.body;
    let communications = contact["communications"].as_array().expect("communications").clone();
    communications.iter().map(|c| c["status"]["status"].as_str().expect("status").to_owned()).collect()
}

/// A tenant whose strategies used today's fuel quota: the import in
/// progress when it ran out finishes; the next is refused with the use and
/// the limit; the planned sends still go out, and their AGGREGATION waits
/// — every session kept, none aggregated — until the operator raises the
/// quota, when all of them are aggregated.
async fn works_when_a_tenant_past_its_daily_fuel_waits_and_nothing_planned_is_lost(backend: Backend) {
    let app = App::start(backend).await;
    let (tenant, client) = app.tenant_with_id("Acme").await;
    let campaign = client.campaign("Collections").await;
    assert_eq!(client.post(&format!("/campaigns/{campaign}/stages"), json!({"name": "1. First contact", "channel": "SIMULATED"})).await.status, 201);
    client.strategy(&campaign, "DATA_LOAD", "examples/simulated/data_load.py").await;
    client.strategy(&campaign, "AGGREGATION", "examples/simulated/aggregation.py").await;
    app.store.tenants().set_quota_settings(&tenant, QuotaSettings { fuel_per_day: Some(1), ..Default::default() }).await.expect("quotas");

    let csv = "object_id,external_id,name,email,phone,persona\nC1,U1,Ann,a@x.io,+1,PAID\nC2,U2,Bob,b@x.io,+2,PAID\nC3,U3,Cy,c@x.io,+3,PAID\n";
    let (status, job) = import_csv(&client, &campaign, csv).await;
    assert_eq!((status, job["accepted"].as_i64()), (202, Some(3)), "admitted with no fuel used today, it runs to its end: {job}");
    let used = total(&client.get("/usage").await.body, "fuel");
    assert!(used > 1, "DATA_LOAD used {used} fuel");

    let (status, problem) = import_csv(&client, &campaign, csv).await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["quota"], json!({"quota": "fuel_per_day", "used": used, "requested": 0, "limit": 1}));
    assert!(problem["detail"].as_str().expect("detail").starts_with("the tenant's quota of strategy fuel per UTC day is 1"), "{problem}");

    for status in ["CONFIGURED", "RUNNING"] {
        assert_eq!(client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await.status, 200);
    }
    let usage = usage_when(&client, |usage| total(usage, "messages") == 3).await;
    // The engine ticks every 50 ms in tests: several ticks pass while nothing may aggregate.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let usage_later = client.get("/usage").await.body;
    assert_eq!(total(&usage_later, "fuel"), total(&usage, "fuel"), "no strategy ran past the quota: {usage_later}");
    for object_id in ["C1", "C2", "C3"] {
        assert_eq!(statuses(&client, &campaign, object_id).await, ["IN_PROGRESS"], "{object_id}: sent, its session kept for AGGREGATION");
    }
    let shown = client.get(&format!("/campaigns/{campaign}")).await.body;
    let why = shown["waiting_for"].as_str().unwrap_or_else(|| panic!("the campaign says what it waits for: {shown}"));
    assert!(why.starts_with(&format!("AGGREGATION waits: the tenant used {} of its 1 strategy fuel per UTC day", total(&usage_later, "fuel"))), "{why}");

    app.store.tenants().set_quota_settings(&tenant, QuotaSettings { fuel_per_day: Some(0), ..Default::default() }).await.expect("quotas");
    usage_when(&client, |usage| {
        usage["rows"].as_array().expect("rows").iter().filter(|row| row["metric"] == "invocations" && row["dimension"] == "AGGREGATION").map(|row| row["value"].as_u64().unwrap_or(0)).sum::<u64>() >= 3
    })
    .await;
    for object_id in ["C1", "C2", "C3"] {
        let statuses = statuses(&client, &campaign, object_id).await;
        assert_ne!(statuses.first().map(String::as_str), Some("IN_PROGRESS"), "{object_id} was aggregated once the quota was raised: {statuses:?}");
    }
    assert_eq!(client.get(&format!("/campaigns/{campaign}")).await.body["waiting_for"], Value::Null);
    // Every contact paid, so the campaign finished; another one imports again.
    let second = client.campaign("Second").await;
    client.strategy(&second, "DATA_LOAD", "examples/simulated/data_load.py").await;
    let (status, job) = import_csv(&client, &second, csv).await;
    assert_eq!((status, job["accepted"].as_i64()), (202, Some(3)), "{job}");
}

async fn import_csv(client: &Client, campaign: &str, csv: &str) -> (u16, Value) {
    let reply = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", csv.as_bytes().to_vec()).await;
    if reply.status != 202 {
        return (reply.status, reply.body);
    }
    (202, client.wait_for_import(reply.body["id"].as_str().expect("job")).await)
}

/// The storage quota counts what `/usage` reports as the tenant's bytes:
/// a file that fits is imported, one that would pass it is refused
/// whole, and a strategy upload past it too.
async fn errors_when_a_tenant_would_store_more_than_its_storage_quota(backend: Backend) {
    let app = App::start(backend).await;
    let (tenant, client) = app.tenant_with_id("Acme").await;
    let campaign = client.campaign("Collections").await;
    app.store.tenants().set_quota_settings(&tenant, QuotaSettings { storage_mib: Some(1), ..Default::default() }).await.expect("quotas");
    let (status, job) = import(&client, &campaign, &["C1", "C2"]).await;
    assert_eq!((status, job["accepted"].as_i64()), (202, Some(2)), "{job}");
    let stored = client.get("/usage").await.body["storage"]["bytes"].as_u64().expect("bytes");
    assert!(stored > 0, "the two contacts are counted");

    let ids: Vec<String> = (0..20_000).map(|n| format!("BIG-{n:06}")).collect();
    let big = people(&ids.iter().map(String::as_str).collect::<Vec<_>>());
    let reply = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", big.clone().into_bytes()).await;
    assert_eq!(reply.status, 403, "{}", reply.text);
    let expected = json!({"quota": "storage_bytes", "used": stored, "requested": big.len(), "limit": 1 << 20});
    assert_eq!(reply.body["quota"], expected);
    assert!(reply.body["detail"].as_str().expect("detail").starts_with("the tenant's storage quota is 1 MiB: it stores 0.0 MiB"), "{}", reply.text);
    assert_eq!(contacts(&client, &campaign).await, 2, "nothing of the file was written");

    let ids: Vec<String> = (0..10_000).map(|n| format!("MID-{n:06}")).collect();
    let (status, job) = import(&client, &campaign, &ids.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!((status, job["accepted"].as_i64()), (202, Some(10_000)), "a file within the quota: {job}");
    let stored = client.get("/usage").await.body["storage"]["bytes"].as_u64().expect("bytes");
    let source = "x = 'a' * 10\n# padding\n".repeat(25_000);
    assert!(stored < 1 << 20 && stored + source.len() as u64 > 1 << 20, "{stored} bytes stored");
    let refused = client.post(&format!("/campaigns/{campaign}/strategies"), json!({"name": "Big", "type": "DATA_LOAD", "source": source})).await;
    refused.problem(403);
    let expected = json!({"quota": "storage_bytes", "used": stored, "requested": source.len(), "limit": 1 << 20});
    assert_eq!(refused.body["quota"], expected, "{}", refused.text);
    assert!(client.get(&format!("/campaigns/{campaign}/strategies")).await.body.as_array().expect("list").is_empty(), "no version was stored");
}
