//! Every step of a campaign either works or says why: an import waits for
//! a DATA_LOAD strategy that is still building and is refused when every
//! version failed; a campaign moves to CONFIGURED or RUNNING only when it
//! is ready, and otherwise lists every reason.

use std::collections::BTreeMap;

use stratagem_domain::strategy::{BuildError, BuildErrorKind, PythonBuildError};
use stratagem_domain::StrategyType;
use stratagem_runtime::StrategySource;
use stratagem_store::VersionInput;

use crate::both_backends;
use crate::support::{builder, repo_file, App, Backend, Client};

use serde_json::{json, Value};

both_backends!(
    works_when_an_import_waits_for_the_data_load_build_then_runs_it,
    errors_when_the_data_load_build_fails_while_an_import_waits,
    errors_when_a_campaign_that_is_not_ready_is_configured_with_every_reason,
    errors_when_a_stage_references_what_cannot_carry_its_channel,
    errors_when_a_stage_with_planned_communications_is_deleted_unless_they_are_cancelled,
);

const CSV: &str = "object_id,external_id,name,email,phone\n123,U1,John Doe,john@example.com,+1\n";

/// A DATA_LOAD version held `building` by the test, as a build in progress
/// on another node is: no worker takes it before its lease ends.
async fn building_data_load(app: &App, client: &Client, campaign: &str) -> (String, i64) {
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    let sources = BTreeMap::from([("data_load.py".to_owned(), repo_file("examples/spec/data_load.py"))]);
    let input = VersionInput::Source { entry: "data_load.py", sources: &sources };
    let lease = chrono::Utc::now() + chrono::Duration::minutes(10);
    app.store.strategies().add_strategy_version(&tenant, campaign, "Load", StrategyType::DataLoad, input, stratagem_store::VersionStart::Leased(lease)).await.expect("version")
}

async fn start_import(client: &Client, campaign: &str) -> String {
    let reply = client.upload(&format!("/campaigns/{campaign}/imports?file_name=contacts.csv"), "text/csv", CSV.into()).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    reply.body["id"].as_str().expect("id").to_owned()
}

/// The job while it waits: running, nothing read, and why.
async fn waiting_job(client: &Client, job: &str) -> serde_json::Value {
    for _ in 0..100 {
        let reply = client.get(&format!("/imports/{job}")).await;
        if !reply.body["waiting_for"].is_null() {
            return reply.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the import never said it waits: {}", client.get(&format!("/imports/{job}")).await.text)
}

async fn works_when_an_import_waits_for_the_data_load_build_then_runs_it(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let (strategy, version) = building_data_load(&app, &client, &campaign).await;

    let job = start_import(&client, &campaign).await;
    let waiting = waiting_job(&client, &job).await;
    assert_eq!(waiting["status"], "running", "{waiting}");
    assert_eq!(waiting["processed_rows"], 0, "{waiting}");
    assert!(waiting["waiting_for"].as_str().expect("why").contains("DATA_LOAD strategy is still building"), "{waiting}");
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let still = client.get(&format!("/imports/{job}")).await.body;
    assert_eq!(still["processed_rows"], 0, "nothing is imported without the strategy: {still}");
    assert_eq!(client.get(&format!("/campaigns/{campaign}/contacts")).await.body["total"], 0);

    let source = StrategySource::single("data_load.py", repo_file("examples/spec/data_load.py"));
    let component = builder().build(&source).await.expect("the spec strategy builds");
    let hash = stratagem_runtime::content_hash(&component);
    app.store.strategies().finish_strategy_build(&strategy, version, Ok((&component, &hash))).await.expect("finished");

    let done = client.wait_for_import(&job).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["accepted"], 1, "{done}");
    assert_eq!(done["waiting_for"], serde_json::Value::Null, "{done}");
    let contact = client.get(&format!("/campaigns/{campaign}/contacts/123")).await;
    assert_eq!(contact.body["current_stage"], "First Contact", "DATA_LOAD ran once built: {}", contact.text);
}

async fn errors_when_the_data_load_build_fails_while_an_import_waits(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let (strategy, version) = building_data_load(&app, &client, &campaign).await;
    let job = start_import(&client, &campaign).await;
    waiting_job(&client, &job).await;

    let error = BuildError {
        kind: BuildErrorKind::Python,
        detail: "data_load.py, line 3: NameError: name 'stagez' is not defined".into(),
        python: Some(PythonBuildError {
            type_name: "NameError".into(),
            message: "name 'stagez' is not defined".into(),
            file: Some("data_load.py".into()),
            line: Some(3),
            column: None,
            source: None,
        }),
    };
    app.store.strategies().finish_strategy_build(&strategy, version, Err(error)).await.expect("finished");
    let stopped = client.wait_for_import(&job).await;
    assert_eq!(stopped["status"], "interrupted", "{stopped}");
    assert_eq!(stopped["interrupted_reason"], "strategy_failed", "{stopped}");
    let detail = stopped["detail"].as_str().expect("detail");
    assert!(detail.contains("data_load.py, line 3: NameError: name 'stagez' is not defined"), "{detail}");
    assert!(detail.contains("No row was written"), "{detail}");
    assert_eq!(stopped["processed_rows"], 0, "{stopped}");
    assert_eq!(client.get(&format!("/campaigns/{campaign}/contacts")).await.body["total"], 0);

    // Every version failed: the next import is refused, naming the error.
    let reply = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", CSV.into()).await;
    let detail = reply.problem(409);
    assert!(detail.contains("DATA_LOAD strategy failed to build (data_load.py, line 3: NameError"), "{detail}");
    assert!(detail.contains("upload a fixed version"), "{detail}");
    assert_eq!(client.get(&format!("/campaigns/{campaign}/contacts")).await.body["total"], 0);
}

async fn created(client: &Client, path: &str, body: Value) -> String {
    let reply = client.post(path, body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body["id"].as_str().expect("id").to_owned()
}

fn codes(blockers: &Value) -> Vec<&str> {
    blockers.as_array().expect("blockers").iter().map(|b| b["code"].as_str().expect("code")).collect()
}

/// Readiness lists every blocker with where it is fixed; the status change
/// answers 409 with the same list, and succeeds once each is fixed.
async fn errors_when_a_campaign_that_is_not_ready_is_configured_with_every_reason(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;

    let empty = client.get(&format!("/campaigns/{campaign}/readiness")).await.body;
    assert_eq!(empty["ready"], false, "{empty}");
    assert_eq!(codes(&empty["blockers"]), ["no_stages", "no_contacts"], "{empty}");
    let refused = client.post(&format!("/campaigns/{campaign}/status"), json!({"status": "CONFIGURED"})).await;
    let detail = refused.problem(409);
    assert_eq!(refused.body["type"], "/problems/campaign-not-ready");
    assert!(detail.starts_with("the campaign is not ready to become CONFIGURED: the campaign has no stage"), "{detail}");
    assert_eq!(refused.body["blockers"], empty["blockers"]);
    assert_eq!(client.get(&format!("/campaigns/{campaign}")).await.body["status"], "CREATED");

    // A stage whose agent channel is gone, a strategy still building and
    // one whose every version failed.
    let bot = created(&client, "/integrations", json!({"kind": "TELEGRAM", "name": "Bot", "secrets": {"bot_token": "123:ABC"}})).await;
    let agent = created(&client, "/agents", json!({"name": "Collector", "channels": [{"name": "tg", "integration_id": bot}]})).await;
    let stage = created(&client, &format!("/campaigns/{campaign}/stages"),
        json!({"name": "Chat", "channel": "TELEGRAM", "agent_id": agent, "settings": {"agent_channel": "tg"}})).await;
    let edited = client.send(reqwest::Method::PUT, &format!("/agents/{agent}"), Some(json!({"name": "Collector"}))).await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    let (building, _) = building_data_load(&app, &client, &campaign).await;
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    let sources = BTreeMap::from([("aggregation.py".to_owned(), "x = (\n".to_owned())]);
    let input = VersionInput::Source { entry: "aggregation.py", sources: &sources };
    let lease = chrono::Utc::now() + chrono::Duration::minutes(10);
    let (broken, version) =
        app.store.strategies().add_strategy_version(&tenant, &campaign, "Aggregate", StrategyType::Aggregation, input, stratagem_store::VersionStart::Leased(lease)).await.expect("version");
    let error = BuildError::new(BuildErrorKind::Python, "aggregation.py, line 1: SyntaxError: '(' was never closed");
    app.store.strategies().finish_strategy_build(&broken, version, Err(error)).await.expect("failed");

    let reply = client.post(&format!("/campaigns/{campaign}/status"), json!({"status": "CONFIGURED"})).await;
    reply.problem(409);
    let blockers = &reply.body["blockers"];
    assert_eq!(codes(blockers), ["stage", "strategy_building", "strategy_failed", "no_contacts"], "{blockers}");
    assert_eq!(blockers[0]["stage_id"], stage.as_str());
    assert_eq!(blockers[0]["field"], "settings.agent_channel");
    assert_eq!(blockers[0]["message"], "stage `Chat`: agent `Collector` has no channel `tg`; its channels: none");
    assert_eq!(blockers[1]["strategy_id"], building.as_str());
    assert_eq!(blockers[2]["strategy_id"], broken.as_str());
    assert!(blockers[2]["message"].as_str().expect("message").contains("(aggregation.py, line 1: SyntaxError: '(' was never closed)"), "{blockers}");
    assert_eq!(client.get(&format!("/campaigns/{campaign}/readiness")).await.body["blockers"], *blockers);

    // Fixed one by one: the agent gets its channel back, the builds finish,
    // contacts arrive; then CONFIGURED and RUNNING are allowed.
    let restored = client.send(reqwest::Method::PUT, &format!("/agents/{agent}"),
        Some(json!({"name": "Collector", "channels": [{"name": "tg", "integration_id": bot}]}))).await;
    assert_eq!(restored.status, 200, "{}", restored.text);
    client.send(reqwest::Method::DELETE, &format!("/strategies/{broken}"), None).await;
    let source = StrategySource::single("data_load.py", repo_file("examples/spec/data_load.py"));
    let component = builder().build(&source).await.expect("the spec strategy builds");
    let hash = stratagem_runtime::content_hash(&component);
    app.store.strategies().finish_strategy_build(&building, 1, Ok((&component, &hash))).await.expect("built");
    assert_eq!(codes(&client.get(&format!("/campaigns/{campaign}/readiness")).await.body["blockers"]), ["no_contacts"]);
    let job = start_import(&client, &campaign).await;
    client.wait_for_import(&job).await;
    let ready = client.get(&format!("/campaigns/{campaign}/readiness")).await.body;
    assert_eq!(ready, json!({"ready": true, "blockers": []}));
    for status in ["CONFIGURED", "RUNNING"] {
        let reply = client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    // Stopped, then broken again: it does not run again until fixed.
    client.post(&format!("/campaigns/{campaign}/status"), json!({"status": "STOPPED"})).await;
    client.send(reqwest::Method::PUT, &format!("/agents/{agent}"), Some(json!({"name": "Collector"}))).await;
    let reply = client.post(&format!("/campaigns/{campaign}/status"), json!({"status": "RUNNING"})).await;
    assert!(reply.problem(409).starts_with("the campaign is not ready to become RUNNING: stage `Chat`"), "{}", reply.text);
}

/// Saving a stage checks that its channel can be sent on.
async fn errors_when_a_stage_references_what_cannot_carry_its_channel(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let path = format!("/campaigns/{campaign}/stages");
    let agent = created(&client, "/agents", json!({"name": "Collector"})).await;

    let reply = client.post(&path, json!({"name": "Chat", "channel": "TELEGRAM", "agent_id": agent})).await;
    reply.problem(422);
    assert_eq!(reply.body["errors"], json!([{"field": "settings.integration_id",
        "message": "channel TELEGRAM needs a TELEGRAM integration: choose one, or an agent channel bound to one"}]));
    let reply = client.post(&path, json!({"name": "Push", "channel": "MOBILE_PUSH", "agent_id": agent})).await;
    reply.problem(422);
    assert_eq!(reply.body["errors"][0]["field"], "agent_id");
    assert_eq!(reply.body["errors"][0]["message"], "agent `Collector` has no push notification configuration; set its push_integration_id");
    // An agent channel bound to an integration of another kind.
    let smtp = created(&client, "/integrations", json!({"kind": "SMTP", "name": "Mail",
        "settings": {"host": "smtp.example.com", "port": 587, "from_address": "a@example.com"}, "secrets": {"password": "x"}})).await;
    let mailer = created(&client, "/agents", json!({"name": "Mailer", "channels": [{"name": "mail", "integration_id": smtp}]})).await;
    let reply = client.post(&path, json!({"name": "Chat", "channel": "TELEGRAM", "agent_id": mailer, "settings": {"agent_channel": "mail"}})).await;
    reply.problem(422);
    assert_eq!(reply.body["errors"][0]["field"], "settings.agent_channel");
    assert_eq!(reply.body["errors"][0]["message"], "integration `Mail` is SMTP, but channel TELEGRAM needs a TELEGRAM integration");
    assert_eq!(client.get(&path).await.body, json!([]), "nothing was saved");

    let bot = created(&client, "/integrations", json!({"kind": "TELEGRAM", "name": "Bot", "secrets": {"bot_token": "123:ABC"}})).await;
    created(&client, &path, json!({"name": "Chat", "channel": "TELEGRAM", "agent_id": agent, "settings": {"integration_id": bot}})).await;
}

/// A stage that planned communications still use is not deleted from
/// under them, unless the user asks for them to be cancelled.
async fn errors_when_a_stage_with_planned_communications_is_deleted_unless_they_are_cancelled(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let stage = created(&client, &format!("/campaigns/{campaign}/stages"), json!({"name": "First Contact", "channel": "SIMULATED"})).await;
    client.strategy(&campaign, "DATA_LOAD", "examples/spec/data_load.py").await;
    let job = start_import(&client, &campaign).await;
    assert_eq!(client.wait_for_import(&job).await["accepted"], 1);

    let reply = client.send(reqwest::Method::DELETE, &format!("/stages/{stage}"), None).await;
    let detail = reply.problem(409);
    assert_eq!(detail, "stage `First Contact` has 1 planned communication(s); delete it with ?cancel_planned=true to cancel them, or change the strategies that plan them first");
    assert_eq!(client.get(&format!("/stages/{stage}")).await.status, 200, "the stage is still there");

    let reply = client.send(reqwest::Method::DELETE, &format!("/stages/{stage}?cancel_planned=true"), None).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    client.get(&format!("/stages/{stage}")).await.problem(404);
    let contact = client.get(&format!("/campaigns/{campaign}/contacts/123")).await.body;
    let communication = &contact["communications"][0];
    assert_eq!(communication["status"]["status"], "CANCELLED", "{contact}");
    assert_eq!(communication["status"]["detail"], "its stage `First Contact` was deleted", "{contact}");
}
