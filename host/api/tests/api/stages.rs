//! Stages with channel-specific settings and A/B alternatives, agents, and
//! integrations whose secrets are write-only.

use serde_json::{json, Value};

use crate::both_backends;
use crate::support::{App, Backend, Client};

both_backends!(
    works_when_configuring_stages_on_every_kind_of_channel,
    errors_when_a_stage_misses_channel_fields_or_names_wrong_references,
    works_when_integration_secrets_stay_write_only,
    errors_when_deleting_an_agent_or_integration_in_use,
    works_when_listing_agents_by_status,
);

async fn created(client: &Client, path: &str, body: Value) -> Value {
    let reply = client.post(path, body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body
}

async fn smtp(client: &Client) -> String {
    let body = json!({
        "kind": "SMTP", "name": "Billing mail",
        "settings": {"host": "smtp.example.com", "port": 587, "from_address": "billing@example.com"},
        "secrets": {"password": "hunter2-smtp"}
    });
    created(client, "/integrations", body).await["id"].as_str().expect("id").to_owned()
}

async fn telegram_agent(client: &Client) -> (String, String) {
    let bot = created(client, "/integrations", json!({"kind": "TELEGRAM", "name": "Bot", "secrets": {"bot_token": "123:ABC"}})).await;
    let bot = bot["id"].as_str().expect("id").to_owned();
    let agent = created(
        client,
        "/agents",
        json!({"name": "Collector", "instructions": "Be polite.", "channels": [{"name": "telegram-main", "integration_id": bot}]}),
    )
    .await;
    (agent["id"].as_str().expect("id").to_owned(), bot)
}

async fn works_when_configuring_stages_on_every_kind_of_channel(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let mail = smtp(&client).await;
    let (agent, bot) = telegram_agent(&client).await;
    let path = format!("/campaigns/{campaign}/stages");

    let email = created(&client, &path, json!({
        "name": "1. Reminder email", "description": "First notice", "channel": "EMAIL_NOTIFICATION",
        "settings": {"integration_id": mail, "email_subject": "Your invoice", "email_input_type": "HTML", "email_template": "<p>Dear {{name}}</p>"}
    }))
    .await;
    assert_eq!(email["position"], 1);
    assert_eq!(email["settings"]["email_input_type"], "HTML");
    let twilio = created(&client, "/integrations", json!({"kind": "TWILIO", "name": "Calls",
        "settings": {"account_sid": "AC1", "from_number": "+1"}, "secrets": {"auth_token": "t"}})).await;
    let twilio = twilio["id"].as_str().expect("id").to_owned();
    let chat = created(&client, &path, json!({
        "name": "2. Telegram chat", "channel": "TELEGRAM", "agent_id": agent,
        "settings": {"integration_id": bot, "agent_channel": "telegram-main", "start_phrase": "Hello!"},
        "alternatives": [
            {"label": "Email instead", "weight": 30, "channel": "EMAIL_COMMUNICATION", "agent_id": agent,
             "settings": {"integration_id": mail, "email_subject": "Let's talk", "email_template": "Hi {{name}}"}},
            {"label": "Call", "weight": 20, "channel": "TWILIO", "agent_id": agent, "settings": {"integration_id": twilio, "start_state": "greet"}}
        ]
    }))
    .await;
    assert_eq!(chat["position"], 2);
    assert_eq!(chat["alternatives"][0]["weight"], 30);
    created(&client, &path, json!({"name": "3. Done", "channel": "NO_COMMUNICATION"})).await;

    let list = client.get(&path).await.body;
    let names: Vec<&str> = list.as_array().expect("list").iter().map(|s| s["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["1. Reminder email", "2. Telegram chat", "3. Done"]);

    let id = chat["id"].as_str().expect("id");
    let sip = created(&client, "/integrations", json!({"kind": "SIP", "name": "Trunk",
        "settings": {"api_base_url": "https://sip.example.com", "caller_id": "+1"}, "secrets": {"api_key": "k"}})).await;
    let sip = sip["id"].as_str().expect("id");
    let edited = client
        .send(reqwest::Method::PUT, &format!("/stages/{id}"), Some(json!({"name": "2. Telegram chat", "channel": "SIP", "agent_id": agent, "settings": {"integration_id": sip}})))
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(edited.body["channel"], "SIP");
    assert_eq!(edited.body["alternatives"], json!([]));
    assert_eq!(client.get(&format!("/stages/{id}")).await.body["channel"], "SIP");

    assert_eq!(client.send(reqwest::Method::DELETE, &format!("/stages/{id}"), None).await.status, 204);
    client.get(&format!("/stages/{id}")).await.problem(404);
    assert_eq!(client.get(&path).await.body.as_array().expect("list").len(), 2);
}

async fn errors_when_a_stage_misses_channel_fields_or_names_wrong_references(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let other = app.tenant("Other").await;
    let campaign = client.campaign("Collections").await;
    let path = format!("/campaigns/{campaign}/stages");
    let (agent, bot) = telegram_agent(&client).await;
    let (foreign_agent, _) = telegram_agent(&other).await;

    let reply = client.post(&path, json!({"name": "1. Mail", "channel": "EMAIL_NOTIFICATION", "settings": {"email_subject": "Hi", "start_state": "x"}})).await;
    reply.problem(422);
    assert_eq!(
        reply.body["errors"],
        json!([
            {"field": "settings.integration_id", "message": "is required for channel EMAIL_NOTIFICATION"},
            {"field": "settings.email_template", "message": "is required for channel EMAIL_NOTIFICATION"},
            {"field": "settings.start_state", "message": "does not apply to channel EMAIL_NOTIFICATION; its settings are integration_id, email_subject, email_template, email_input_type"}
        ])
    );

    let reply = client
        .post(&path, json!({"name": "1. Mail", "channel": "EMAIL_NOTIFICATION", "settings": {"integration_id": bot, "email_subject": "Hi", "email_template": "x"}}))
        .await;
    reply.problem(422);
    assert_eq!(reply.body["errors"][0]["message"], "integration `Bot` is TELEGRAM, but channel EMAIL_NOTIFICATION needs a SMTP integration");

    let reply = client.post(&path, json!({"name": "2. Chat", "channel": "TELEGRAM", "agent_id": foreign_agent})).await;
    reply.problem(422);
    assert_eq!(reply.body["errors"][0], json!({"field": "agent_id", "message": format!("there is no agent `{foreign_agent}`")}));

    let reply = client.post(&path, json!({"name": "2. Chat", "channel": "TELEGRAM", "agent_id": agent, "settings": {"agent_channel": "whatsapp"}})).await;
    reply.problem(422);
    assert_eq!(reply.body["errors"][0]["message"], "agent `Collector` has no channel `whatsapp`; its channels: telegram-main");

    let reply = client
        .post(&path, json!({"name": "2. Chat", "channel": "SIMULATED", "alternatives": [
            {"label": "A", "weight": 70, "channel": "SIMULATED"}, {"label": "B", "weight": 40, "channel": "SIMULATED"}]}))
        .await;
    let detail = reply.problem(422);
    assert!(detail.contains("weights add up to 110"), "{detail}");

    let reply = client.post(&path, json!({"name": "x", "channel": "FAX"})).await;
    let detail = reply.problem(400);
    assert!(detail.contains("unknown variant `FAX`"), "{detail}");

    created(&client, &path, json!({"name": "3. Done", "channel": "NO_COMMUNICATION"})).await;
    let detail = client.post(&path, json!({"name": "3. Done", "channel": "SIMULATED"})).await.problem(409);
    assert_eq!(detail, "this campaign already has a stage named `3. Done`; stage names must be unique");
    // Nothing half-written: only the one valid stage exists.
    assert_eq!(client.get(&path).await.body.as_array().expect("list").len(), 1);
}

async fn works_when_integration_secrets_stay_write_only(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("tenant").expect("key is valid");
    let id = smtp(&client).await;
    for reply in [client.get(&format!("/integrations/{id}")).await, client.get("/integrations").await] {
        assert_eq!(reply.status, 200);
        assert!(!reply.text.contains("hunter2-smtp"), "secret leaked: {}", reply.text);
    }
    let shown = client.get(&format!("/integrations/{id}")).await.body;
    assert_eq!(shown["secrets_set"], json!(["password"]));
    assert_eq!(shown["settings"]["host"], "smtp.example.com");

    // An update that leaves the secret out keeps it; one that names it replaces it.
    let settings = json!({"host": "smtp2.example.com", "port": 465, "from_address": "billing@example.com", "tls": "tls"});
    let reply = client.send(reqwest::Method::PUT, &format!("/integrations/{id}"), Some(json!({"name": "Billing mail", "settings": settings}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(app.store.integrations().integration_secrets(&tenant, &id).await.expect("secrets")["password"], "hunter2-smtp");
    let reply = client
        .send(reqwest::Method::PUT, &format!("/integrations/{id}"), Some(json!({"name": "Billing mail", "settings": settings, "secrets": {"password": "rotated"}})))
        .await;
    assert!(!reply.text.contains("rotated"));
    assert_eq!(app.store.integrations().integration_secrets(&tenant, &id).await.expect("secrets")["password"], "rotated");

    let reply = client.post("/integrations", json!({"kind": "TWILIO", "name": "Calls", "settings": {"account_sid": "AC1", "from_number": "+1", "region": "eu"}})).await;
    reply.problem(422);
    let fields: Vec<&str> = reply.body["errors"].as_array().expect("errors").iter().map(|e| e["field"].as_str().expect("field")).collect();
    assert_eq!(fields, ["settings.region", "secrets.auth_token"]);
}

async fn errors_when_deleting_an_agent_or_integration_in_use(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let (agent, bot) = telegram_agent(&client).await;
    let stage = created(&client, &format!("/campaigns/{campaign}/stages"),
        json!({"name": "1. Chat", "channel": "TELEGRAM", "agent_id": agent, "settings": {"agent_channel": "telegram-main"}})).await;

    let detail = client.send(reqwest::Method::DELETE, &format!("/agents/{agent}"), None).await.problem(409);
    assert!(detail.contains("used by stage `1. Chat`"), "{detail}");
    let detail = client.send(reqwest::Method::DELETE, &format!("/integrations/{bot}"), None).await.problem(409);
    assert!(detail.contains("agent `Collector`"), "{detail}");

    let stage = stage["id"].as_str().expect("id");
    assert_eq!(client.send(reqwest::Method::DELETE, &format!("/stages/{stage}"), None).await.status, 204);
    assert_eq!(client.send(reqwest::Method::DELETE, &format!("/agents/{agent}"), None).await.status, 204);
    assert_eq!(client.send(reqwest::Method::DELETE, &format!("/integrations/{bot}"), None).await.status, 204);
    client.get(&format!("/integrations/{bot}")).await.problem(404);
}

async fn works_when_listing_agents_by_status(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    created(&client, "/agents", json!({"name": "Active"})).await;
    created(&client, "/agents", json!({"name": "Paused", "status": "STOPPED"})).await;
    let running = client.get("/agents?status=RUNNING").await.body;
    assert_eq!(running.as_array().expect("list").len(), 1);
    assert_eq!(running[0]["name"], "Active");
    assert_eq!(client.get("/agents").await.body.as_array().expect("list").len(), 2);
    let detail = client.get("/agents?status=BUSY").await.problem(400);
    assert_eq!(detail, "unknown status `BUSY`; one of RUNNING, STOPPED");
    let reply = client.post("/agents", json!({"name": "Pusher", "push_integration_id": "int_missing"})).await;
    reply.problem(422);
    assert_eq!(reply.body["errors"][0]["message"], "there is no integration `int_missing`");
}
