use serde_json::json;

use crate::both_backends;
use crate::support::{App, Background, Backend, Client, Tuning};

both_backends!(
    errors_when_the_key_is_missing_wrong_or_revoked,
    works_when_a_key_is_shown_once_and_listed_without_its_secret,
    works_when_the_openapi_document_and_docs_page_are_served,
    errors_with_409_when_the_last_active_key_would_be_revoked,
    errors_with_403_when_the_tenant_is_disabled_until_it_is_enabled,
    errors_with_401_when_the_tenant_is_deleted,
    works_when_the_bearer_scheme_is_in_any_case_and_spaced_out,
    errors_with_429_when_a_key_exceeds_its_rate,
);

/// `client` with another of its tenant's keys.
fn with_key(client: &Client, key: &serde_json::Value) -> Client {
    let mut other = client.clone();
    other.key = key.as_str().expect("key").to_owned();
    other
}

async fn errors_when_the_key_is_missing_wrong_or_revoked(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    assert_eq!(client.get("/campaigns").await.status, 200);

    let mut anonymous = client.clone();
    anonymous.key = String::new();
    let detail = anonymous.get("/campaigns").await.problem(401);
    assert_eq!(detail, "a valid API key is required: send `Authorization: Bearer stg_…`");

    let mut forged = client.clone();
    let last = if client.key.ends_with('0') { '1' } else { '0' };
    forged.key = format!("{}{last}", &client.key[..client.key.len() - 1]);
    forged.get("/campaigns").await.problem(401);

    let second = client.post("/keys", json!({"name": "ci"})).await;
    assert_eq!(second.status, 201);
    let mut ci = client.clone();
    ci.key = second.body["key"].as_str().expect("key").to_owned();
    assert_eq!(ci.get("/campaigns").await.status, 200);
    let revoked = client.send(reqwest::Method::DELETE, &format!("/keys/{}", second.body["id"].as_str().expect("id")), None).await;
    assert_eq!(revoked.status, 204);
    ci.get("/campaigns").await.problem(401);
}

async fn works_when_a_key_is_shown_once_and_listed_without_its_secret(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let created = client.post("/keys", json!({"name": "reporting"})).await;
    let secret = created.body["key"].as_str().expect("key").to_owned();
    assert!(secret.starts_with("stg_"));
    let listed = client.get("/keys").await;
    assert_eq!(listed.body.as_array().expect("keys").len(), 2);
    assert!(!listed.text.contains(&secret[secret.len() - 20..]), "a secret leaked into the list");
}

async fn works_when_the_openapi_document_and_docs_page_are_served(backend: Backend) {
    let app = App::start(backend).await;
    let document: serde_json::Value =
        reqwest::get(format!("{}/api/openapi.json", app.base)).await.expect("get").json().await.expect("json");
    assert_eq!(document["openapi"], "3.1.0");
    for path in ["/campaigns", "/campaigns/{id}/status", "/campaigns/{id}/imports", "/strategies/{id}", "/keys"] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
    let page = reqwest::get(format!("{}/api/docs", app.base)).await.expect("get").text().await.expect("text");
    assert!(page.contains("fetch('/api/openapi.json')"));
}

/// A tenant cannot lock itself out: its last active key stays until
/// another exists.
async fn errors_with_409_when_the_last_active_key_would_be_revoked(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let first = client.get("/keys").await.body[0]["id"].as_str().expect("key id").to_owned();
    let refused = client.send(reqwest::Method::DELETE, &format!("/keys/{first}"), None).await;
    let detail = refused.problem(409);
    assert_eq!(refused.body["type"], "/problems/last-api-key", "{}", refused.text);
    assert!(detail.contains("last active API key") && detail.contains("Create another key first (POST /api/keys)"), "{detail}");
    assert_eq!(client.get("/campaigns").await.status, 200, "the key still works");

    // With a second key, the first can go; then the second is the last.
    let second = client.post("/keys", json!({"name": "ci"})).await;
    assert_eq!(second.status, 201, "{}", second.text);
    let ci = with_key(&client, &second.body["key"]);
    assert_eq!(ci.send(reqwest::Method::DELETE, &format!("/keys/{first}"), None).await.status, 204);
    client.get("/campaigns").await.problem(401);
    let last = second.body["id"].as_str().expect("id");
    assert_eq!(ci.send(reqwest::Method::DELETE, &format!("/keys/{last}"), None).await.body["type"], "/problems/last-api-key");
    // A revoked key is gone; another tenant's key is not found.
    ci.send(reqwest::Method::DELETE, &format!("/keys/{first}"), None).await.problem(404);
    assert_eq!(ci.get("/campaigns").await.status, 200);
}

async fn errors_with_403_when_the_tenant_is_disabled_until_it_is_enabled(backend: Backend) {
    let app = App::start(backend).await;
    let (tenant, client) = app.tenant_with_id("Acme").await;
    let other = app.tenant("Other").await;
    let second = with_key(&client, &client.post("/keys", json!({"name": "ci"})).await.body["key"]);
    assert!(app.store.tenants().set_tenant_disabled(&tenant, true).await.expect("disable"));
    for key in [&client, &second] {
        let reply = key.get("/campaigns").await;
        assert!(reply.problem(403).starts_with("the tenant of this API key is disabled"), "{}", reply.text);
        assert_eq!(reply.body["type"], "/problems/tenant-disabled");
    }
    // Only a valid key learns that its tenant is disabled.
    let mut forged = client.clone();
    forged.key = format!("{}{}", &client.key[..client.key.len() - 1], if client.key.ends_with('0') { '1' } else { '0' });
    forged.get("/campaigns").await.problem(401);
    assert_eq!(other.get("/campaigns").await.status, 200, "other tenants are not affected");
    assert!(app.store.tenants().set_tenant_disabled(&tenant, false).await.expect("enable"));
    assert_eq!(client.get("/campaigns").await.status, 200);
    assert_eq!(second.get("/keys").await.status, 200);
}

/// A deleted tenant's keys are refused like unknown ones; its running
/// campaign is stopped and its data kept.
async fn errors_with_401_when_the_tenant_is_deleted(backend: Backend) {
    let app = App::start_with(backend, Background::Off).await;
    let (tenant, client) = app.tenant_with_id("Acme").await;
    let other = app.tenant("Other").await;
    let second = with_key(&client, &client.post("/keys", json!({"name": "ci"})).await.body["key"]);
    let campaign = client.ready_campaign("Collections").await;
    for status in ["CONFIGURED", "RUNNING"] {
        assert_eq!(client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await.status, 200);
    }
    let deleted = app.store.tenants().delete_tenant(&tenant).await.expect("delete");
    assert_eq!((deleted.revoked_keys, deleted.stopped_campaigns), (2, 1), "{deleted:?}");
    for key in [&client, &second] {
        assert_eq!(key.get("/campaigns").await.problem(401), "a valid API key is required: send `Authorization: Bearer stg_…`");
    }
    assert_eq!(other.get("/campaigns").await.status, 200, "other tenants are not affected");
    let kept = app.store.campaigns().campaign(&tenant, &campaign).await.expect("the data is kept");
    assert_eq!(kept.status.as_str(), "STOPPED");
    // Final: no new key, no enabling, no second delete.
    assert!(matches!(app.store.tenants().create_api_key(&tenant, "again").await, Err(stratagem_store::StoreError::NotFound("tenant"))));
    assert!(app.store.tenants().set_tenant_disabled(&tenant, false).await.is_err());
    assert!(app.store.tenants().delete_tenant(&tenant).await.is_err());
}

/// RFC 9110: the auth-scheme is case-insensitive; blanks around the token
/// are tolerated.
async fn works_when_the_bearer_scheme_is_in_any_case_and_spaced_out(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let send = |authorization: String| {
        let request = app.http.get(format!("{}/api/campaigns", app.base)).header("authorization", authorization);
        async move { request.send().await.expect("request").status().as_u16() }
    };
    let key = &client.key;
    for accepted in [format!("Bearer {key}"), format!("bearer {key}"), format!("BEARER {key}"), format!("bEaReR   {key}"), format!("Bearer \t {key}  ")] {
        assert_eq!(send(accepted.clone()).await, 200, "{accepted:?}");
    }
    for refused in [format!("Basic {key}"), format!("Bearer{key}"), key.clone(), "Bearer ".to_owned()] {
        assert_eq!(send(refused.clone()).await, 401, "{refused:?}");
    }
}

/// A key within its rate (2 a second, bursts of 4) is served; past it, 429
/// with Retry-After, while another tenant's key is served as before; after
/// the wait, the key is served again.
async fn errors_with_429_when_a_key_exceeds_its_rate(backend: Backend) {
    let app = App::start_tuned(backend, Tuning { api_rate_limit: Some(2), ..Tuning::default() }).await;
    let client = app.tenant("Acme").await;
    let other = app.tenant("Other").await;
    let get = |key: String| {
        let url = format!("{}/api/campaigns", app.base);
        async move { reqwest::Client::new().get(url).bearer_auth(key).send().await.expect("request") }
    };
    let mut served = 0;
    let refused = loop {
        let reply = get(client.key.clone()).await;
        if reply.status() == 429 {
            break reply;
        }
        assert_eq!(reply.status(), 200);
        served += 1;
        assert!(served < 20, "never limited");
    };
    assert!(served >= 4, "the burst is served: {served}");
    let wait: u64 = refused.headers()["retry-after"].to_str().expect("text").parse().expect("seconds");
    assert!((1..=2).contains(&wait), "{wait}");
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = refused.json().await.expect("problem");
    assert_eq!(problem["type"], "/problems/rate-limited");
    assert!(problem["detail"].as_str().expect("detail").starts_with("this API key sent more than 2 requests per second"), "{problem}");

    assert_eq!(get(other.key.clone()).await.status(), 200, "another key is not held back");
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    assert_eq!(get(client.key.clone()).await.status(), 200, "served again after Retry-After");
}
