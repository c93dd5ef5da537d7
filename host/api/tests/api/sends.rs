//! Sends through a provider. A communication's `parameters` override its
//! stage's settings for that one message. A send that fails is FAILED,
//! with its reason, in the contact's history,
//! the status distribution, and AGGREGATION's `session_results`
//! (`OutcomeStatus: FAILED` with the `FailureDetail`), so a strategy can
//! try another channel. A provider that cannot take a message for now
//! (5xx, 429) gets it again later under the same idempotency key; one
//! that refuses it (4xx) does not.
//!
//! A local Infobip plays the provider and records every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::both_backends;
use crate::support::{App, Backend, Client};

both_backends!(
    works_when_failed_sends_are_failed_and_transient_ones_are_retried_with_the_same_key,
    works_when_a_communication_overrides_its_stages_start_phrase,
);

/// Numbers the local Infobip refuses for good, and those it is too busy
/// for the first two times.
const REFUSED: &str = "1666";
const BUSY: &str = "1777";

#[derive(Clone, Default)]
struct Infobip {
    /// (destination, messageId) of every SMS request.
    requests: Arc<Mutex<Vec<(String, String)>>>,
    /// (destination, text) of every SMS request.
    texts: Arc<Mutex<Vec<(String, String)>>>,
}

async fn send_sms(State(infobip): State<Infobip>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let message = &body["messages"][0];
    let to = message["destinations"][0]["to"].as_str().expect("to").to_owned();
    let id = message["destinations"][0]["messageId"].as_str().expect("messageId").to_owned();
    infobip.texts.lock().expect("lock").push((to.clone(), message["text"].as_str().unwrap_or_default().to_owned()));
    let attempts = {
        let mut requests = infobip.requests.lock().expect("lock");
        requests.push((to.clone(), id.clone()));
        requests.iter().filter(|(number, _)| *number == to).count()
    };
    match to.as_str() {
        REFUSED => (StatusCode::BAD_REQUEST, Json(json!({"requestError": {"serviceException": {"text": "Invalid destination address"}}}))),
        BUSY if attempts <= 2 => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"requestError": {"serviceException": {"text": "try later"}}}))),
        _ => (StatusCode::OK, Json(json!({"bulkId": id, "messages": [{"to": to, "messageId": id, "status": {"groupName": "PENDING"}}]}))),
    }
}

async fn infobip() -> (String, Infobip) {
    let infobip = Infobip::default();
    let app = Router::new().route("/sms/2/text/advanced", post(send_sms)).with_state(infobip.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, infobip)
}

async fn created(client: &Client, path: &str, body: Value) -> String {
    let reply = client.post(path, body).await;
    assert_eq!(reply.status, 201, "{path}: {}", reply.text);
    reply.body["id"].as_str().expect("id").to_owned()
}

/// The contact once its first communication has left IN_PROGRESS and
/// AGGREGATION planned the next one.
async fn settled(client: &Client, campaign: &str, object_id: &str) -> Value {
    let mut contact = Value::Null;
    for _ in 0..600 {
        contact = client.get(&format!("/campaigns/{campaign}/contacts/{object_id}")).await.body;
        let first = &contact["communications"][0]["status"]["status"];
        if first != "PLANNED" && first != "IN_PROGRESS" && contact["communications"].as_array().is_some_and(|all| all.len() > 1) {
            return contact;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{object_id} never settled: {contact}")
}

/// A campaign whose first stage sends an SMS through the local Infobip,
/// opening with "Hello {{parameters.nickname}}", then a simulated retry.
async fn sms_campaign(client: &Client, base: &str) -> String {
    let sms = created(client, "/integrations", json!({"kind": "INFOBIP", "name": "SMS",
        "settings": {"api_base_url": base, "sender": "Acme"}, "secrets": {"api_key": "ib-key"}})).await;
    let agent = created(client, "/agents", json!({"name": "Collector"})).await;
    let campaign = created(client, "/campaigns", json!({"name": "SMS collections"})).await;
    created(client, &format!("/campaigns/{campaign}/stages"), json!({"name": "1. First contact", "channel": "INFOBIP", "agent_id": agent,
        "settings": {"integration_id": sms, "start_phrase": "Hello {{parameters.nickname}}"}})).await;
    created(client, &format!("/campaigns/{campaign}/stages"), json!({"name": "2. Retry", "channel": "SIMULATED"})).await;
    campaign
}

async fn import_and_run(client: &Client, campaign: &str, contacts: &[Value]) {
    let jsonl: String = contacts.iter().map(|c| format!("{c}\n")).collect();
    let job = client.upload(&format!("/campaigns/{campaign}/imports"), "application/x-ndjson", jsonl.into_bytes()).await;
    assert_eq!(client.wait_for_import(job.body["id"].as_str().expect("job")).await["accepted"], contacts.len());
    for status in ["CONFIGURED", "RUNNING"] {
        let reply = client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
}

/// The spec's "Start phrase … defined in the Strategies code": a
/// communication's `parameters` replace the stage's start phrase (and any
/// other content setting its channel takes) for that one message.
async fn works_when_a_communication_overrides_its_stages_start_phrase(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let (base, infobip) = infobip().await;
    let campaign = sms_campaign(&client, &base).await;
    let data_load = r#"
async def run(contact: Contact, existing_contact: Contact | None, logger, **kwargs) -> Contact:
    phrase = {"start_phrase": "Hi {{name}}, your personal offer is ready"} if contact.parameters.get("vip") else {}
    contact.communications.append(Communication(
        name="First contact", stage_name="1. First contact", start_date=datetime.now(),
        end_date=datetime.now() + timedelta(hours=2), parameters=phrase))
    return contact
"#;
    client.strategy_source(&campaign, "DATA_LOAD", "data_load.py", data_load).await;
    import_and_run(&client, &campaign, &[
        json!({"object_id": "V1", "external_id": "U1", "name": "Vera", "email": "v@example.com", "phone": "+1901", "nickname": "V", "vip": true}),
        json!({"object_id": "S1", "external_id": "U2", "name": "Sam", "email": "s@example.com", "phone": "+1902", "nickname": "Sammy"}),
    ]).await;
    let mut texts = Vec::new();
    for _ in 0..600 {
        texts = infobip.texts.lock().expect("lock").clone();
        if texts.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    texts.sort();
    assert_eq!(texts, [("1901".to_owned(), "Hi Vera, your personal offer is ready".to_owned()), ("1902".to_owned(), "Hello Sammy".to_owned())]);
}

async fn works_when_failed_sends_are_failed_and_transient_ones_are_retried_with_the_same_key(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let (base, infobip) = infobip().await;
    let campaign = sms_campaign(&client, &base).await;
    client.strategy(&campaign, "DATA_LOAD", "examples/simulated/data_load.py").await;
    client.strategy(&campaign, "AGGREGATION", "examples/failures/aggregation.py").await;
    // Refused by the provider; busy twice, then taken; a start phrase
    // naming a parameter the contact lacks.
    let contacts = [
        json!({"object_id": "R1", "external_id": "U1", "name": "Rita", "email": "r@example.com", "phone": format!("+{REFUSED}"), "nickname": "Rita"}),
        json!({"object_id": "B1", "external_id": "U2", "name": "Bob", "email": "b@example.com", "phone": format!("+{BUSY}"), "nickname": "Bob"}),
        json!({"object_id": "N1", "external_id": "U3", "name": "Nick", "email": "n@example.com", "phone": "+1888"}),
    ];
    import_and_run(&client, &campaign, &contacts).await;

    let refused = settled(&client, &campaign, "R1").await;
    let first = &refused["communications"][0];
    assert_eq!(first["status"]["status"], "FAILED", "{refused}");
    let reason = first["status"]["detail"].as_str().expect("reason");
    assert!(reason.contains("400") && reason.contains("Invalid destination address"), "{reason}");
    // AGGREGATION saw the failure and chose another channel.
    assert_eq!(refused["results"]["failure_seen"], reason, "{refused}");
    assert_eq!(refused["communications"][1]["stage_name"], "2. Retry", "{refused}");
    // The Contacts table shows the outcome the strategy set, not the session's.
    let list = client.get(&format!("/campaigns/{campaign}/contacts?q=R1")).await.body;
    let outcome = list["contacts"][0]["outcome"].as_str().unwrap_or_default().to_owned();
    assert!(outcome == "Fell back" || outcome == "Reached", "{list}");

    let missing = settled(&client, &campaign, "N1").await;
    assert_eq!(missing["communications"][0]["status"]["status"], "FAILED", "{missing}");
    let reason = missing["communications"][0]["status"]["detail"].as_str().expect("reason");
    assert!(reason.starts_with("start phrase:") && reason.contains("parameters.nickname"), "{reason}");

    // The busy number got its message on the third attempt, each under the
    // communication's id; the refused one was asked once; the one without
    // a nickname never reached the provider.
    let busy = settled(&client, &campaign, "B1").await;
    let first = &busy["communications"][0];
    assert_ne!(first["status"]["status"], "FAILED", "{busy}");
    let requests = infobip.requests.lock().expect("lock").clone();
    let by_number: HashMap<&str, Vec<&str>> = requests.iter().fold(HashMap::new(), |mut map, (to, id)| {
        map.entry(to.as_str()).or_default().push(id.as_str());
        map
    });
    let communication_id = first["id"].as_str().expect("id");
    assert_eq!(by_number[BUSY], [communication_id; 3], "{requests:?}");
    assert_eq!(by_number[REFUSED].len(), 1, "{requests:?}");
    assert!(!by_number.contains_key("1888"), "{requests:?}");

    // The status distribution counts the failures as FAILED.
    let distribution = client.get(&format!("/campaigns/{campaign}/analytics/distribution?by=status")).await.body;
    let failed: i64 = distribution["buckets"].as_array().expect("buckets").iter().filter_map(|b| b["counts"]["FAILED"].as_i64()).sum();
    assert_eq!(failed, 2, "{distribution}");
}
