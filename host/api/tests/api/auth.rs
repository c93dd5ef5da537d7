use serde_json::json;

use crate::both_backends;
use crate::support::{App, Backend};

both_backends!(
    errors_when_the_key_is_missing_wrong_or_revoked,
    works_when_a_key_is_shown_once_and_listed_without_its_secret,
    works_when_the_openapi_document_and_docs_page_are_served,
);

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
