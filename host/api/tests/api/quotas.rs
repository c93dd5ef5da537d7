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
    app.store.tenants().set_quota_settings(&tenant, QuotaSettings { contacts: Some(3), campaigns: Some(1) }).await.expect("quotas");

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
    let quotas = Quotas { contacts: Some(2), campaigns: None };
    let app = App::start_tuned(backend, Tuning { quotas: Some(quotas), ..Tuning::default() }).await;
    let (tenant, client) = app.tenant_with_id("Acme").await;
    let campaign = client.campaign("Collections").await;
    let (status, problem) = import(&client, &campaign, &["C1", "C2", "C3"]).await;
    assert_eq!((status, problem["quota"]["limit"].as_u64()), (403, Some(2)), "the node's default: {problem}");

    // The operator lifts it for this tenant: 0 is unlimited.
    app.store.tenants().set_quota_settings(&tenant, QuotaSettings { contacts: Some(0), campaigns: None }).await.expect("quotas");
    let (status, job) = import(&client, &campaign, &["C1", "C2", "C3"]).await;
    assert_eq!((status, job["accepted"].as_i64()), (202, Some(3)), "{job}");
    // Another tenant still has the default.
    let other = app.tenant("Other").await;
    let theirs = other.campaign("Theirs").await;
    assert_eq!(import(&other, &theirs, &["C1", "C2", "C3"]).await.0, 403);
}
