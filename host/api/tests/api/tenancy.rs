//! Another tenant's ids answer 404 on every resource, never data.

use serde_json::json;

use crate::both_backends;
use crate::support::{App, Backend};

both_backends!(errors_with_404_when_using_another_tenants_ids);

async fn errors_with_404_when_using_another_tenants_ids(backend: Backend) {
    let app = App::start(backend).await;
    let owner = app.tenant("Owner").await;
    let intruder = app.tenant("Intruder").await;
    let campaign = owner.campaign("Secret campaign").await;
    let strategy = owner.strategy(&campaign, "DATA_LOAD", "examples/spec/data_load.py").await;
    let strategy = strategy["id"].as_str().expect("id").to_owned();
    let job = owner
        .upload(&format!("/campaigns/{campaign}/imports"), "text/csv", b"object_id,external_id,name,email,phone\n1,U,Ann,a@x.io,+1\n".to_vec())
        .await;
    let job = job.body["id"].as_str().expect("job").to_owned();
    owner.wait_for_import(&job).await;
    let owner_key = owner.get("/keys").await.body[0]["id"].as_str().expect("key").to_owned();
    let integration = owner
        .post("/integrations", json!({"kind": "TELEGRAM", "name": "Secret bot", "secrets": {"bot_token": "1:A"}}))
        .await;
    let integration = integration.body["id"].as_str().expect("integration").to_owned();
    let agent = owner.post("/agents", json!({"name": "Secret campaign agent"})).await;
    let agent = agent.body["id"].as_str().expect("agent").to_owned();
    let stage = owner
        .post(&format!("/campaigns/{campaign}/stages"), json!({"name": "Secret campaign stage", "channel": "SIMULATED"}))
        .await;
    let stage = stage.body["id"].as_str().expect("stage").to_owned();

    let get = reqwest::Method::GET;
    let checks = [
        (get.clone(), format!("/campaigns/{campaign}"), None),
        (reqwest::Method::PUT, format!("/campaigns/{campaign}"), Some(json!({"name": "mine"}))),
        (reqwest::Method::POST, format!("/campaigns/{campaign}/status"), Some(json!({"status": "CONFIGURED"}))),
        (get.clone(), format!("/campaigns/{campaign}/strategies"), None),
        (reqwest::Method::POST, format!("/campaigns/{campaign}/strategies"), Some(json!({"name": "x", "type": "AGGREGATION", "source": "x = 1"}))),
        (get.clone(), format!("/strategies/{strategy}"), None),
        (reqwest::Method::PUT, format!("/strategies/{strategy}"), Some(json!({"source": "x = 1"}))),
        (reqwest::Method::DELETE, format!("/strategies/{strategy}"), None),
        (get.clone(), format!("/imports/{job}"), None),
        (get.clone(), format!("/campaigns/{campaign}/contacts"), None),
        (get.clone(), format!("/campaigns/{campaign}/contacts/1"), None),
        (get.clone(), format!("/campaigns/{campaign}/contacts/export"), None),
        (get.clone(), format!("/campaigns/{campaign}/contacts/report"), None),
        (reqwest::Method::DELETE, format!("/keys/{owner_key}"), None),
        (get.clone(), format!("/campaigns/{campaign}/stages"), None),
        (reqwest::Method::POST, format!("/campaigns/{campaign}/stages"), Some(json!({"name": "x", "channel": "SIMULATED"}))),
        (get.clone(), format!("/stages/{stage}"), None),
        (reqwest::Method::PUT, format!("/stages/{stage}"), Some(json!({"name": "x", "channel": "SIMULATED"}))),
        (reqwest::Method::DELETE, format!("/stages/{stage}"), None),
        (get.clone(), format!("/agents/{agent}"), None),
        (reqwest::Method::PUT, format!("/agents/{agent}"), Some(json!({"name": "x"}))),
        (reqwest::Method::DELETE, format!("/agents/{agent}"), None),
        (get.clone(), format!("/integrations/{integration}"), None),
        (reqwest::Method::PUT, format!("/integrations/{integration}"), Some(json!({"name": "x", "secrets": {"bot_token": "2:B"}}))),
        (reqwest::Method::DELETE, format!("/integrations/{integration}"), None),
    ];
    for (method, path, body) in checks {
        let reply = intruder.send(method.clone(), &path, body).await;
        reply.problem(404);
        assert!(!reply.text.contains("Secret campaign") && !reply.text.contains("Ann"), "{method} {path} leaked: {}", reply.text);
    }
    let import = intruder.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", b"object_id,external_id,name,email,phone\n2,U,Eve,e@x.io,+1\n".to_vec()).await;
    import.problem(404);
    // And the owner's data is untouched.
    assert_eq!(owner.get(&format!("/campaigns/{campaign}")).await.body["name"], "Secret campaign");
    assert_eq!(owner.get(&format!("/strategies/{strategy}")).await.status, 200);
    assert_eq!(owner.get(&format!("/campaigns/{campaign}/contacts")).await.body["total"], 1);
    assert_eq!(owner.get(&format!("/stages/{stage}")).await.body["name"], "Secret campaign stage");
    assert_eq!(owner.get(&format!("/agents/{agent}")).await.status, 200);
    assert_eq!(owner.get(&format!("/integrations/{integration}")).await.body["name"], "Secret bot");
    // Lists never show another tenant's rows.
    assert_eq!(intruder.get("/agents").await.body, json!([]));
    assert_eq!(intruder.get("/integrations").await.body, json!([]));
}
