//! Names are validated alike on create (POST) and on replace (PUT), for
//! every resource that has one: not blank, at most 200 characters as sent
//! (the OpenAPI document states the same rule).

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::support::{App, Backend, Client};

both_backends!(
    errors_when_a_name_is_blank_on_create_or_on_replace,
    works_when_a_name_has_200_characters_and_errors_at_201,
    errors_when_a_strategy_edit_renames_it_to_a_blank_name,
);

/// Each resource: where it is created, a valid body, and the status a
/// blank name gets.
async fn resources(client: &Client) -> Vec<(&'static str, String, Value, u16)> {
    let campaign = client.campaign("Names").await;
    vec![
        ("campaign", "/campaigns".to_owned(), json!({"name": "x", "description": "", "llm_integration_id": null, "llm_model": null, "result_fields": [], "http_allowlist": []}), 400),
        ("stage", format!("/campaigns/{campaign}/stages"), json!({"name": "x", "channel": "SIMULATED"}), 422),
        ("agent", "/agents".to_owned(), json!({"name": "x"}), 422),
        ("integration", "/integrations".to_owned(), json!({"kind": "LLM", "name": "x", "settings": {"api_base_url": "https://llm.example.com/v1"}}), 400),
    ]
}

/// Where a created resource is replaced.
fn item(kind: &str, id: &str) -> String {
    match kind {
        "campaign" => format!("/campaigns/{id}"),
        "stage" => format!("/stages/{id}"),
        "agent" => format!("/agents/{id}"),
        _ => format!("/integrations/{id}"),
    }
}

fn named(body: &Value, name: &str) -> Value {
    let mut body = body.clone();
    body["name"] = json!(name);
    body
}

/// The body that replaces it: an integration's kind cannot change.
fn replacing(body: &Value, name: &str) -> Value {
    let mut body = named(body, name);
    body.as_object_mut().expect("object").remove("kind");
    body
}

async fn errors_when_a_name_is_blank_on_create_or_on_replace(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    for (kind, path, body, status) in resources(&client).await {
        let created = client.post(&path, body.clone()).await;
        assert_eq!(created.status, 201, "{kind}: {}", created.text);
        let id = created.body["id"].as_str().expect("id");
        for blank in ["", "   ", "\t\n", "\u{3000}"] {
            let post = client.post(&path, named(&body, blank)).await;
            let put = client.send(Method::PUT, &item(kind, id), Some(replacing(&body, blank))).await;
            assert!(post.problem(status).contains("1 to 200 characters"), "{kind} POST {blank:?}: {}", post.text);
            assert!(put.problem(status).contains("1 to 200 characters"), "{kind} PUT {blank:?}: {}", put.text);
        }
        assert_eq!(client.get(&item(kind, id)).await.body["name"], "x", "{kind}: the refused replace changed nothing");
    }
    let key = client.post("/keys", json!({"name": " "})).await;
    assert!(key.problem(400).contains("1 to 200 characters"), "{}", key.text);
}

async fn works_when_a_name_has_200_characters_and_errors_at_201(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    // Characters, not bytes: each of these is two bytes in UTF-8.
    let longest = "é".repeat(200);
    let over = "é".repeat(201);
    for (kind, path, body, status) in resources(&client).await {
        let created = client.post(&path, named(&body, &longest)).await;
        assert_eq!((created.status, &created.body["name"]), (201, &json!(longest)), "{kind}: {}", created.text);
        let id = created.body["id"].as_str().expect("id");
        let replaced = client.send(Method::PUT, &item(kind, id), Some(replacing(&body, &longest))).await;
        assert_eq!(replaced.status, 200, "{kind}: {}", replaced.text);
        client.post(&path, named(&body, &over)).await.problem(status);
        client.send(Method::PUT, &item(kind, id), Some(replacing(&body, &over))).await.problem(status);
    }
    assert_eq!(client.post("/keys", json!({"name": longest})).await.status, 201);
    client.post("/keys", json!({"name": over})).await.problem(400);
}

async fn errors_when_a_strategy_edit_renames_it_to_a_blank_name(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let path = format!("/campaigns/{campaign}/strategies");
    let source = "def on_data_load(contact, campaign):\n    return contact\n";
    let blank = client.post(&path, json!({"name": " ", "type": "DATA_LOAD", "source": source})).await;
    assert!(blank.problem(400).contains("1 to 200 characters"), "{}", blank.text);
    let created = client.post(&path, json!({"name": "Loader", "type": "DATA_LOAD", "source": source})).await;
    assert_eq!(created.status, 202, "{}", created.text);
    let id = created.body["id"].as_str().expect("id");
    client.wait_for_build(id).await;

    let edit = client.send(Method::PUT, &format!("/strategies/{id}"), Some(json!({"name": " ", "source": source}))).await;
    assert!(edit.problem(400).contains("1 to 200 characters"), "{}", edit.text);
    let component = client.put_raw(&format!("/strategies/{id}/component?name=%20"), "application/wasm", b"\0asm\x0d\0\x01\0".to_vec()).await;
    assert!(component.problem(400).contains("1 to 200 characters"), "{}", component.text);
    let upload = client.upload(&format!("{path}/component?name=%20&type=DATA_LOAD"), "application/wasm", b"\0asm\x0d\0\x01\0".to_vec()).await;
    assert!(upload.problem(400).contains("1 to 200 characters"), "{}", upload.text);
    let strategy = client.get(&format!("/strategies/{id}")).await;
    assert_eq!((strategy.body["name"].as_str(), strategy.body["latest"]["version"].as_i64()), (Some("Loader"), Some(1)), "{}", strategy.text);
}
