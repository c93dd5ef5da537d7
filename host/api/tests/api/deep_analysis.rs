//! Deep Analysis through the API, against a local server speaking the
//! OpenAI chat-completions protocol: runs over real transcripts with exact
//! aggregates, Continue calculation after a YAML update, Stop, a node dying
//! mid-batch, an LLM that is down, slow or answers garbage, and the errors
//! of a run that cannot start. The tests tick their own engine, so they
//! count every LLM call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use stratagem_domain::{Communication, CommunicationState, CommunicationStatus, Message, MessageRole};
use stratagem_engine::{Engine, EngineConfig};

use crate::both_backends;
use crate::support::{repo_file, App, Background, Backend, Client, TEST_ENGINE};

both_backends!(
    works_when_a_recalculation_analyses_the_sessions_within_the_depth,
    works_when_the_schedule_analyses_ended_sessions_on_its_own,
    works_when_continue_computes_only_the_metrics_new_in_the_yaml,
    works_when_a_run_is_stopped_and_continued,
    works_when_a_run_survives_a_node_dying_mid_batch,
    works_when_the_llm_is_down_or_slow_for_a_while,
    errors_when_the_llm_answers_garbage,
    errors_when_a_run_cannot_start,
    errors_when_another_tenant_asks,
);

/// What the fake LLM does with the next calls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Answer,
    /// 200 OK with something that is no answer.
    Garbage,
}

/// A chat-completions endpoint that answers from the transcript's words
/// and records every request.
#[derive(Clone)]
struct FakeLlm {
    base: String,
    requests: Arc<Mutex<Vec<Value>>>,
    mode: Arc<Mutex<Mode>>,
    /// The next calls answered HTTP 500 (never one about Ann's transcript).
    failures: Arc<AtomicUsize>,
    /// The first call about a transcript with this word waits this long.
    slow: Arc<Mutex<Option<(&'static str, Duration)>>>,
}

impl FakeLlm {
    async fn start() -> FakeLlm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}/v1", listener.local_addr().expect("address"));
        let llm = FakeLlm {
            base,
            requests: Arc::default(),
            mode: Arc::new(Mutex::new(Mode::Answer)),
            failures: Arc::default(),
            slow: Arc::default(),
        };
        let router = axum::Router::new().route("/v1/chat/completions", axum::routing::post(complete)).with_state(llm.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        llm
    }

    fn calls(&self) -> usize {
        self.requests.lock().expect("lock").len()
    }

    /// The transcripts asked about (the user message of each call).
    fn transcripts(&self) -> Vec<String> {
        self.requests.lock().expect("lock").iter().map(|r| r["messages"][1]["content"].as_str().unwrap_or_default().to_owned()).collect()
    }

    fn system_prompts(&self) -> Vec<String> {
        self.requests.lock().expect("lock").iter().map(|r| r["messages"][0]["content"].as_str().unwrap_or_default().to_owned()).collect()
    }

    /// Every request named the campaign's model and carried the key.
    fn assert_well_formed(&self) {
        for request in self.requests.lock().expect("lock").iter() {
            assert_eq!(request["model"], "campaign-model", "{request}");
            assert_eq!(request["authorization"], "Bearer sk-test", "{request}");
            let messages = request["messages"].as_array().expect("messages");
            assert_eq!((messages.len(), &messages[0]["role"], &messages[1]["role"]), (2, &json!("system"), &json!("user")), "{request}");
        }
    }
}

async fn complete(State(llm): State<FakeLlm>, headers: axum::http::HeaderMap, Json(mut body): Json<Value>) -> axum::response::Response {
    body["authorization"] = json!(headers.get("authorization").and_then(|v| v.to_str().ok()));
    let transcript = body["messages"][1]["content"].as_str().unwrap_or_default().to_owned();
    let first_time = !llm.transcripts().contains(&transcript);
    llm.requests.lock().expect("lock").push(body);
    let slow = *llm.slow.lock().expect("lock");
    if let Some((_, delay)) = slow.filter(|(word, _)| first_time && transcript.contains(word)) {
        tokio::time::sleep(delay).await;
    }
    // Ann's call always gets through, so which session of a batch survives
    // an outage does not depend on the order the calls arrive in.
    let spared = transcript.contains(PAYER_1.said.unwrap_or_default());
    if !spared && llm.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "model overloaded").into_response();
    }
    let mode = *llm.mode.lock().expect("lock");
    let content = match mode {
        Mode::Garbage if transcript.contains("already paid") => return "<html>Bad gateway</html>".into_response(),
        Mode::Garbage => "Sorry, I cannot help with that.".to_owned(),
        Mode::Answer => answer(&transcript).to_string(),
    };
    Json(json!({"id": "cmpl-1", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}))
        .into_response()
}

/// What a careful model would say about the test's conversations; the
/// mumbling one gets answers that fit no metric.
fn answer(transcript: &str) -> Value {
    if transcript.contains("I will pay") {
        json!({"client_satisfaction": 4, "promise_to_pay": true, "payment_intent": "will_pay_in_full", "promised_amount": 500,
               "days_until_payment": 1, "dispute_reason": "none", "callback_requested": false, "agent_politeness": 9, "tone": "calm"})
    } else if transcript.contains("already paid") {
        // No date promised: days_until_payment is left out.
        json!({"client_satisfaction": 2, "promise_to_pay": false, "payment_intent": "disputes_debt", "promised_amount": 0,
               "dispute_reason": "already_paid", "callback_requested": true, "agent_politeness": 8, "tone": "angry"})
    } else {
        json!({"client_satisfaction": 7, "promise_to_pay": "perhaps", "payment_intent": "maybe", "promised_amount": -5,
               "days_until_payment": 2.5, "dispute_reason": "none", "callback_requested": false, "agent_politeness": "ten", "tone": "calm"})
    }
}

/// A tenant with a campaign that has the example YAML and an LLM
/// integration pointing at `llm`.
struct Setup {
    app: App,
    client: Client,
    tenant: String,
    campaign: String,
}

async fn setup(backend: Backend, llm: &FakeLlm) -> Setup {
    let app = App::start_with(backend, Background::Off).await;
    let (tenant, key) = app.store.tenants().create_tenant("Acme").await.expect("tenant");
    let client = Client { base: app.base.clone(), http: app.http.clone(), key: key.key };
    let campaign = client.campaign("Collections").await;
    let reply = client
        .post(
            "/integrations",
            json!({"kind": "LLM", "name": "Local model", "settings": {"api_base_url": llm.base, "default_model": "default-model"}, "secrets": {"api_key": "sk-test"}}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let integration = reply.body["id"].as_str().expect("id").to_owned();
    let reply = client
        .send(
            reqwest::Method::PATCH,
            &format!("/campaigns/{campaign}"),
            Some(json!({"llm_integration_id": integration, "llm_model": "campaign-model"})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    upload_yaml(&client, &campaign, &repo_file("examples/analytics/debt-collection.yaml")).await;
    Setup { app, client, tenant, campaign }
}

async fn upload_yaml(client: &Client, campaign: &str, yaml: &str) {
    let reply = client.put_raw(&format!("/campaigns/{campaign}/analytics"), "application/yaml", yaml.as_bytes().to_vec()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

/// A conversation: who, what the contact said, how many days ago it ended.
struct Conversation {
    object_id: &'static str,
    said: Option<&'static str>,
    days_ago: i64,
}

const PAYER_1: Conversation = Conversation { object_id: "ann", said: Some("Yes, I will pay 500 tomorrow."), days_ago: 1 };
const PAYER_2: Conversation = Conversation { object_id: "ben", said: Some("Fine, I will pay the 500 tomorrow morning."), days_ago: 2 };
const DISPUTER: Conversation = Conversation { object_id: "cat", said: Some("I already paid this last month!"), days_ago: 3 };
const MUMBLER: Conversation = Conversation { object_id: "dan", said: Some("Hmm... mumble... whatever."), days_ago: 4 };
/// Beyond the example's 30 days of depth.
const OLD: Conversation = Conversation { object_id: "eve", said: Some("Okay, I will pay next week."), days_ago: 40 };
/// A session without a transcript (a notification): nothing to analyse.
const SILENT: Conversation = Conversation { object_id: "fay", said: None, days_ago: 1 };

/// Imports the contacts through the API, then writes each one's session as
/// the engine would: a communication that started, its transcript, its end.
/// Returns the communication ids by object id.
async fn conversations(setup: &Setup, conversations: &[Conversation]) -> HashMap<&'static str, String> {
    let Setup { app, client, tenant, campaign } = setup;
    let csv: String = std::iter::once("object_id,external_id,name,email,phone\n".to_owned())
        .chain(conversations.iter().map(|c| format!("{0},{0},{0},{0}@example.com,+1\n", c.object_id)))
        .collect();
    let job = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", csv.into_bytes()).await;
    assert_eq!(job.status, 202, "{}", job.text);
    let job = client.wait_for_import(job.body["id"].as_str().expect("job")).await;
    assert_eq!(job["accepted"], conversations.len(), "{job}");
    let mut ids = HashMap::new();
    for conversation in conversations {
        let ended = chrono::Utc::now() - chrono::Duration::days(conversation.days_ago);
        let started = ended - chrono::Duration::minutes(10);
        let mut contact = app.store.contacts().contact(tenant, campaign, conversation.object_id).await.expect("contact").contact;
        let id = format!("com_{}", uuid::Uuid::new_v4().simple());
        contact.communications.push(Communication {
            id: Some(id.clone()),
            name: "first contact".into(),
            stage_name: "WhatsApp".into(),
            start_date: started,
            end_date: None,
            status: CommunicationState { status: CommunicationStatus::InProgress, detail: None, updated_at: Some(started) },
            flagged: false,
            alternative: None,
            parameters: Default::default(),
        });
        app.store.contacts().upsert_contacts(tenant, campaign, &[(contact, None)]).await.expect("session");
        if let Some(said) = conversation.said {
            for (role, content, at) in [
                (MessageRole::Agent, format!("Hello {}, this is about your overdue invoice of 500 EUR.", conversation.object_id), started),
                (MessageRole::Contact, said.to_owned(), started + chrono::Duration::minutes(1)),
            ] {
                let message = Message { role, content, sent_at: at, communication_id: None };
                assert!(app.store.conversations().append_message(tenant, &id, None, &message, None).await.expect("message"));
            }
        }
        let mut results = stratagem_domain::JsonMap::new();
        results.insert("OutcomeStatus".into(), "ANSWERED".into());
        app.store.dispatch().end_session(&id, None, "WHATSAPP", &results, ended).await.expect("end");
        ids.insert(conversation.object_id, id);
    }
    ids
}

async fn start(client: &Client, campaign: &str, mode: &str) -> Value {
    let reply = client.post(&format!("/campaigns/{campaign}/analysis/runs"), json!({"mode": mode})).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    reply.body
}

async fn latest(client: &Client, campaign: &str) -> Value {
    let reply = client.get(&format!("/campaigns/{campaign}/analysis/runs/latest")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body
}

/// Ticks until the latest run is no longer in progress (a lease left by a
/// dead node may take a few seconds to expire).
async fn tick_until_finished(engine: &Engine, client: &Client, campaign: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        engine.tick().await.expect("tick");
        let run = latest(client, campaign).await;
        if run["status"] != "PROGRESS" {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the run never finished: {}", latest(client, campaign).await)
}

async fn results(client: &Client, campaign: &str) -> HashMap<String, Value> {
    let reply = client.get(&format!("/campaigns/{campaign}/analysis/results")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["metrics"].as_array().expect("metrics").iter().map(|m| (m["code"].as_str().expect("code").to_owned(), m.clone())).collect()
}

/// `(sessions, errors, unanswered, values, mean)` of a metric's result.
fn tally(result: &Value) -> (i64, i64, i64, Value, Value) {
    (
        result["sessions"].as_i64().expect("sessions"),
        result["errors"].as_i64().expect("errors"),
        result["unanswered"].as_i64().expect("unanswered"),
        result["values"].clone(),
        result["mean"].clone(),
    )
}

fn mean(value: &Value) -> f64 {
    value.as_f64().expect("a mean")
}

async fn works_when_a_recalculation_analyses_the_sessions_within_the_depth(backend: Backend) {
    let llm = FakeLlm::start().await;
    let setup = setup(backend, &llm).await;
    let (client, campaign) = (&setup.client, setup.campaign.as_str());
    let ids = conversations(&setup, &[PAYER_1, PAYER_2, DISPUTER, MUMBLER, OLD, SILENT]).await;
    let engine = setup.app.engine(TEST_ENGINE);

    let run = start(client, campaign, "RECALCULATE").await;
    assert_eq!((run["status"].as_str(), run["mode"].as_str()), (Some("PROGRESS"), Some("RECALCULATE")), "{run}");
    assert_eq!(run["metrics"].as_array().expect("metrics").len(), 8);
    assert_eq!((run["total"].as_i64(), run["done"].as_i64()), (Some(4 * 8), Some(0)), "4 sessions within 30 days have a transcript: {run}");
    assert_eq!((run["skipped"].as_i64(), run["scheduled"].as_bool()), (Some(1), Some(false)), "one has none: {run}");
    assert_eq!(run["finished_at"], Value::Null);

    let run = tick_until_finished(&engine, client, campaign).await;
    assert_eq!(run["status"], "DONE", "{run}");
    assert_eq!((run["total"].as_i64(), run["done"].as_i64(), run["failed"].as_i64()), (Some(32), Some(32), Some(5)), "{run}");
    assert_eq!(run["last_error"], Value::Null);
    assert!(run["finished_at"].is_string());
    assert_eq!(llm.calls(), 4, "one call per session, all metrics at once");
    llm.assert_well_formed();
    let transcripts = llm.transcripts();
    assert!(transcripts.iter().all(|t| !t.contains("next week")), "the session beyond the depth is not analysed");
    let prompt = &llm.system_prompts()[0];
    assert!(prompt.contains("\"client_satisfaction\" (a whole number from 1 to 5): Rate how satisfied"), "{prompt}");
    assert!(prompt.contains("\"payment_intent\" (one of \"will_pay_in_full\", \"will_pay_in_part\""), "{prompt}");
    assert!(prompt.contains("\"promised_amount\" (a number from 0 to 1000000)"), "{prompt}");
    assert!(transcripts.iter().any(|t| t.contains("Agent: Hello cat") && t.contains("Contact: I already paid this last month!")));

    let metrics = results(client, campaign).await;
    assert_eq!(metrics.len(), 8);
    let satisfaction = &metrics["client_satisfaction"];
    assert_eq!((satisfaction["name"].as_str(), satisfaction["type"].as_str(), satisfaction["display"].as_str()), (Some("Client satisfaction"), Some("scale"), Some("bar")));
    assert_eq!(satisfaction["scale"], json!({"min": 1, "max": 5}));
    let (sessions, errors, unanswered, values, average) = tally(satisfaction);
    assert_eq!((sessions, errors, unanswered, values), (3, 1, 0, json!({"4": 2, "2": 1})));
    assert!((mean(&average) - 10.0 / 3.0).abs() < 1e-9);
    let (sessions, errors, unanswered, values, average) = tally(&metrics["promise_to_pay"]);
    assert_eq!((sessions, errors, unanswered, values), (3, 1, 0, json!({"true": 2, "false": 1})));
    assert!((mean(&average) - 2.0 / 3.0).abs() < 1e-9, "a boolean's mean is its share of true");
    assert_eq!(tally(&metrics["payment_intent"]), (3, 1, 0, json!({"will_pay_in_full": 2, "disputes_debt": 1}), Value::Null));
    let (sessions, errors, unanswered, values, average) = tally(&metrics["promised_amount"]);
    assert_eq!((sessions, errors, unanswered, values), (3, 1, 0, json!({"500": 2, "0": 1})));
    assert!((mean(&average) - 1000.0 / 3.0).abs() < 1e-9);
    let day = |days_ago: i64| (chrono::Utc::now() - chrono::Duration::days(days_ago)).date_naive().to_string();
    assert_eq!(
        metrics["promised_amount"]["by_day"],
        json!([{"day": day(3), "sessions": 1, "mean": 0.0}, {"day": day(2), "sessions": 1, "mean": 500.0}, {"day": day(1), "sessions": 1, "mean": 500.0}]),
        "per day the session ended, the mumbler's error left out"
    );
    let (sessions, errors, unanswered, values, average) = tally(&metrics["days_until_payment"]);
    assert_eq!((sessions, errors, unanswered, values), (3, 0, 1, json!({"1": 2, "2.5": 1})), "no date promised is no answer, not an error");
    assert!((mean(&average) - 1.5).abs() < 1e-9);
    assert_eq!(tally(&metrics["dispute_reason"]), (4, 0, 0, json!({"none": 3, "already_paid": 1}), Value::Null));
    assert_eq!(tally(&metrics["callback_requested"]), (4, 0, 0, json!({"false": 3, "true": 1}), json!(0.25)));
    let (sessions, errors, unanswered, values, average) = tally(&metrics["agent_politeness"]);
    assert_eq!((sessions, errors, unanswered, values), (3, 1, 0, json!({"9": 2, "8": 1})));
    assert!((mean(&average) - 26.0 / 3.0).abs() < 1e-9);

    // The mumbling session's values, for its contact's 360 view.
    let reply = client.get(&format!("/campaigns/{campaign}/analysis/sessions/{}", ids["dan"])).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let values = reply.body.as_array().expect("values");
    let codes: Vec<&str> = values.iter().map(|v| v["metric"].as_str().expect("metric")).collect();
    assert_eq!(codes, ["client_satisfaction", "promise_to_pay", "payment_intent", "promised_amount", "days_until_payment", "dispute_reason", "callback_requested", "agent_politeness"]);
    assert_eq!((&values[0]["value"], values[0]["error"].as_str()), (&Value::Null, Some("the LLM answered 7, not a whole number from 1 to 5")));
    assert_eq!(values[1]["error"], "the LLM answered \"perhaps\", not true or false");
    assert!(values[2]["error"].as_str().expect("error").starts_with("the LLM answered \"maybe\", not one of \"will_pay_in_full\""));
    assert_eq!(values[3]["error"], "the LLM answered -5, not a number from 0 to 1000000");
    assert_eq!((&values[4]["value"], &values[4]["error"]), (&json!(2.5), &Value::Null));
    assert_eq!(values[7]["error"], "the LLM answered \"ten\", not a whole number from 1 to 10");
    assert!(values[0]["computed_at"].is_string());
    let reply = client.get(&format!("/campaigns/{campaign}/analysis/sessions/{}", ids["eve"])).await;
    assert_eq!(reply.body, json!([]), "beyond the depth: never analysed");

    // Recalculate replaces every value: one more call per session, same tallies.
    let before = client.get(&format!("/campaigns/{campaign}/analysis/sessions/{}", ids["ann"])).await.body;
    let second = start(client, campaign, "RECALCULATE").await;
    assert_ne!(second["id"], run["id"]);
    let second = tick_until_finished(&engine, client, campaign).await;
    assert_eq!((second["status"].as_str(), second["done"].as_i64(), second["failed"].as_i64()), (Some("DONE"), Some(32), Some(5)), "{second}");
    assert_eq!(llm.calls(), 8);
    assert_eq!(results(client, campaign).await, metrics);
    let after = client.get(&format!("/campaigns/{campaign}/analysis/sessions/{}", ids["ann"])).await.body;
    assert_eq!(after[0]["value"], before[0]["value"]);
    assert_ne!(after[0]["computed_at"], before[0]["computed_at"], "recomputed");
}

const TONE: &str = "
  - code: tone
    name: Client tone
    prompt: Was the client calm or angry?
    type: category
    categories: [calm, angry]
";

async fn works_when_continue_computes_only_the_metrics_new_in_the_yaml(backend: Backend) {
    let llm = FakeLlm::start().await;
    let setup = setup(backend, &llm).await;
    let (client, campaign) = (&setup.client, setup.campaign.as_str());
    let ids = conversations(&setup, &[PAYER_1, PAYER_2, DISPUTER, MUMBLER]).await;
    let engine = setup.app.engine(TEST_ENGINE);
    start(client, campaign, "RECALCULATE").await;
    assert_eq!(tick_until_finished(&engine, client, campaign).await["status"], "DONE");
    assert_eq!(llm.calls(), 4);
    let before = client.get(&format!("/campaigns/{campaign}/analysis/sessions/{}", ids["cat"])).await.body;

    let yaml = repo_file("examples/analytics/debt-collection.yaml") + TONE;
    upload_yaml(client, campaign, &yaml).await;
    assert_eq!(results(client, campaign).await["tone"]["sessions"], 0, "a new metric has no values yet");
    let run = start(client, campaign, "CONTINUE").await;
    assert_eq!((run["mode"].as_str(), run["metrics"].clone(), run["total"].as_i64()), (Some("CONTINUE"), json!(["tone"]), Some(4)), "{run}");
    let run = tick_until_finished(&engine, client, campaign).await;
    assert_eq!((run["status"].as_str(), run["done"].as_i64(), run["failed"].as_i64()), (Some("DONE"), Some(4), Some(0)), "{run}");
    assert_eq!(llm.calls(), 8, "one more call per session");
    for prompt in &llm.system_prompts()[4..] {
        assert!(prompt.contains("\"tone\" (one of \"calm\", \"angry\"): Was the client calm or angry?"), "{prompt}");
        assert!(!prompt.contains("client_satisfaction") && !prompt.contains("promise_to_pay"), "only the new metric is asked: {prompt}");
    }
    let metrics = results(client, campaign).await;
    assert_eq!(tally(&metrics["tone"]), (4, 0, 0, json!({"calm": 3, "angry": 1}), Value::Null));
    assert_eq!(metrics["client_satisfaction"]["values"], json!({"4": 2, "2": 1}), "earlier values are kept");
    let after = client.get(&format!("/campaigns/{campaign}/analysis/sessions/{}", ids["cat"])).await.body;
    assert_eq!(after.as_array().expect("values").len(), 9);
    assert_eq!(&after.as_array().expect("values")[..8], before.as_array().expect("values").as_slice(), "the old values were not recomputed");
    assert_eq!(after[8], json!({"metric": "tone", "value": "angry", "error": null, "computed_at": after[8]["computed_at"]}));

    // Nothing left to continue: a run that is done at once, with no call.
    let run = start(client, campaign, "CONTINUE").await;
    assert_eq!((run["status"].as_str(), run["metrics"].clone(), run["total"].as_i64()), (Some("DONE"), json!([]), Some(0)), "{run}");
    engine.tick().await.expect("tick");
    assert_eq!(llm.calls(), 8);
}

async fn works_when_a_run_is_stopped_and_continued(backend: Backend) {
    let llm = FakeLlm::start().await;
    let setup = setup(backend, &llm).await;
    let (client, campaign) = (&setup.client, setup.campaign.as_str());
    conversations(&setup, &[PAYER_1, PAYER_2, DISPUTER, MUMBLER]).await;
    // Two sessions per batch.
    let engine = setup.app.engine(EngineConfig { batch: 2, ..TEST_ENGINE });
    let run = start(client, campaign, "RECALCULATE").await;
    let id = run["id"].as_str().expect("id");
    assert_eq!(engine.tick().await.expect("tick").analyzed, 2);
    let progress = latest(client, campaign).await;
    assert_eq!((progress["status"].as_str(), progress["done"].as_i64()), (Some("PROGRESS"), Some(16)), "{progress}");

    let stopped = client.post(&format!("/campaigns/{campaign}/analysis/runs/{id}/stop"), json!({})).await;
    assert_eq!(stopped.status, 200, "{}", stopped.text);
    assert_eq!((stopped.body["status"].as_str(), stopped.body["done"].as_i64()), (Some("STOPPED"), Some(16)), "{}", stopped.text);
    assert!(stopped.body["finished_at"].is_string());
    for _ in 0..3 {
        assert_eq!(engine.tick().await.expect("tick").analyzed, 0);
    }
    assert_eq!(llm.calls(), 2, "no batch after the stop");
    assert_eq!(latest(client, campaign).await["status"], "STOPPED");
    let detail = client.post(&format!("/campaigns/{campaign}/analysis/runs/{id}/stop"), json!({})).await.problem(409);
    assert_eq!(detail, "the analysis run is already STOPPED, not in progress; there is nothing to stop");

    // Continue calculation picks up exactly the sessions the stop left.
    let run = start(client, campaign, "CONTINUE").await;
    assert_eq!((run["status"].as_str(), run["total"].as_i64(), run["metrics"].as_array().map(Vec::len)), (Some("PROGRESS"), Some(16), Some(8)), "{run}");
    let run = tick_until_finished(&engine, client, campaign).await;
    assert_eq!((run["status"].as_str(), run["done"].as_i64()), (Some("DONE"), Some(16)), "{run}");
    assert_eq!(llm.calls(), 4);
    let mut transcripts = llm.transcripts();
    transcripts.sort();
    transcripts.dedup();
    assert_eq!(transcripts.len(), 4, "no session was asked about twice");
    let detail = client.post(&format!("/campaigns/{campaign}/analysis/runs/{}/stop", run["id"].as_str().expect("id")), json!({})).await.problem(409);
    assert_eq!(detail, "the analysis run is DONE, not in progress; there is nothing to stop");
}

async fn works_when_a_run_survives_a_node_dying_mid_batch(backend: Backend) {
    let llm = FakeLlm::start().await;
    let setup = setup(backend, &llm).await;
    let (client, campaign) = (&setup.client, setup.campaign.as_str());
    conversations(&setup, &[PAYER_1, PAYER_2, DISPUTER, MUMBLER]).await;
    // The first call about the dispute hangs; the node dies waiting for it.
    *llm.slow.lock().expect("lock") = Some(("already paid", Duration::from_secs(30)));
    let config = EngineConfig { lease: chrono::Duration::seconds(2), ..TEST_ENGINE };
    start(client, campaign, "RECALCULATE").await;
    let node = Arc::new(setup.app.engine(config.clone()));
    let dying = tokio::spawn({
        let node = node.clone();
        async move { node.tick().await }
    });
    for _ in 0..200 {
        if latest(client, campaign).await["done"] == 24 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    dying.abort();
    assert!(dying.await.expect_err("aborted").is_cancelled());
    drop(node);
    let run = latest(client, campaign).await;
    assert_eq!((run["status"].as_str(), run["done"].as_i64()), (Some("PROGRESS"), Some(24)), "three sessions were written: {run}");
    assert_eq!(llm.calls(), 4);

    // Another engine on the same database takes over once the lease expires.
    let successor = setup.app.engine(config);
    let run = tick_until_finished(&successor, client, campaign).await;
    assert_eq!((run["status"].as_str(), run["done"].as_i64(), run["failed"].as_i64()), (Some("DONE"), Some(32), Some(5)), "{run}");
    assert_eq!(llm.calls(), 5, "only the unfinished session is asked again");
    let transcripts = llm.transcripts();
    assert_eq!(transcripts.iter().filter(|t| t.contains("already paid")).count(), 2);
    assert_eq!(tally(&results(client, campaign).await["payment_intent"]), (3, 1, 0, json!({"will_pay_in_full": 2, "disputes_debt": 1}), Value::Null));
}

async fn works_when_the_llm_is_down_or_slow_for_a_while(backend: Backend) {
    let llm = FakeLlm::start().await;
    let setup = setup(backend, &llm).await;
    let (client, campaign) = (&setup.client, setup.campaign.as_str());
    conversations(&setup, &[PAYER_1, PAYER_2, DISPUTER, MUMBLER]).await;

    // Down: three of the four calls of the first batch get HTTP 500.
    llm.failures.store(3, Ordering::SeqCst);
    let engine = setup.app.engine(TEST_ENGINE);
    start(client, campaign, "RECALCULATE").await;
    assert_eq!(engine.tick().await.expect("tick").analyzed, 1);
    let run = latest(client, campaign).await;
    assert_eq!((run["status"].as_str(), run["done"].as_i64(), run["failed"].as_i64()), (Some("PROGRESS"), Some(8), Some(0)), "{run}");
    let error = run["last_error"].as_str().expect("last_error");
    assert!(
        error.starts_with(&format!("the LLM endpoint {}/chat/completions answered HTTP 500: model overloaded", llm.base))
            && error.ends_with("; the sessions left are asked again shortly"),
        "{error}"
    );
    assert_eq!(engine.tick().await.expect("tick").analyzed, 0);
    assert_eq!(llm.calls(), 4, "the run rests a moment before asking again");
    let run = tick_until_finished(&engine, client, campaign).await;
    assert_eq!((run["status"].as_str(), run["done"].as_i64(), run["failed"].as_i64()), (Some("DONE"), Some(32), Some(5)), "nothing lost: {run}");
    assert_eq!(run["last_error"], Value::Null, "cleared once the LLM answers");
    assert_eq!(llm.calls(), 7);

    // Slow: the engine gives up after its lease (1 s here) and asks again.
    *llm.slow.lock().expect("lock") = Some(("mumble", Duration::from_secs(3)));
    llm.requests.lock().expect("lock").retain(|r| !r["messages"][1]["content"].as_str().unwrap_or_default().contains("mumble"));
    let impatient = setup.app.engine(EngineConfig { lease: chrono::Duration::seconds(1), ..TEST_ENGINE });
    let calls = llm.calls();
    start(client, campaign, "RECALCULATE").await;
    assert_eq!(impatient.tick().await.expect("tick").analyzed, 3);
    let run = latest(client, campaign).await;
    assert_eq!((run["status"].as_str(), run["done"].as_i64()), (Some("PROGRESS"), Some(24)), "{run}");
    assert!(run["last_error"].as_str().expect("last_error").contains("did not answer within 1 s"), "{run}");
    let run = tick_until_finished(&impatient, client, campaign).await;
    assert_eq!((run["status"].as_str(), run["done"].as_i64(), run["failed"].as_i64()), (Some("DONE"), Some(32), Some(5)), "{run}");
    assert_eq!(llm.calls() - calls, 5);
}

async fn errors_when_the_llm_answers_garbage(backend: Backend) {
    let llm = FakeLlm::start().await;
    let setup = setup(backend, &llm).await;
    let (client, campaign) = (&setup.client, setup.campaign.as_str());
    let ids = conversations(&setup, &[PAYER_1, PAYER_2, DISPUTER]).await;
    *llm.mode.lock().expect("lock") = Mode::Garbage;
    let engine = setup.app.engine(TEST_ENGINE);
    start(client, campaign, "RECALCULATE").await;
    let run = tick_until_finished(&engine, client, campaign).await;
    assert_eq!((run["status"].as_str(), run["done"].as_i64(), run["failed"].as_i64()), (Some("DONE"), Some(24), Some(24)), "{run}");
    assert_eq!(run["last_error"], Value::Null, "garbage is a per-session error, not an outage");
    assert_eq!(llm.calls(), 3, "garbage is not retried");
    for (code, result) in results(client, campaign).await {
        assert_eq!(tally(&result), (0, 3, 0, json!({}), Value::Null), "{code}");
    }
    let url = format!("{}/chat/completions", llm.base);
    let values = client.get(&format!("/campaigns/{campaign}/analysis/sessions/{}", ids["ann"])).await.body;
    assert_eq!(
        values[0]["error"],
        format!("the LLM endpoint {url} answered something that is not a chat completion: expected a JSON object, got `Sorry, I cannot help with that.`")
    );
    let values = client.get(&format!("/campaigns/{campaign}/analysis/sessions/{}", ids["cat"])).await.body;
    let error = values[7]["error"].as_str().expect("error");
    assert!(error.starts_with(&format!("the LLM endpoint {url} answered something that is not a chat completion: not JSON")), "{error}");
}

async fn errors_when_a_run_cannot_start(backend: Backend) {
    let app = App::start_with(backend, Background::Off).await;
    let (tenant, key) = app.store.tenants().create_tenant("Acme").await.expect("tenant");
    let client = Client { base: app.base.clone(), http: app.http.clone(), key: key.key };
    let campaign = client.campaign("Collections").await;
    let runs = format!("/campaigns/{campaign}/analysis/runs");
    assert_eq!(client.get(&format!("{runs}/latest")).await.problem(404), "analysis run not found");
    assert_eq!(client.get(&format!("/campaigns/{campaign}/analysis/results")).await.body, json!({"metrics": []}));

    let detail = client.post(&runs, json!({"mode": "RECALCULATE"})).await.problem(422);
    assert!(detail.starts_with("the campaign has no YAML analytics file: upload one in Settings > YAML Analytics"), "{detail}");
    upload_yaml(&client, &campaign, &repo_file("examples/analytics/debt-collection.yaml")).await;
    let detail = client.post(&runs, json!({"mode": "CONTINUE"})).await.problem(422);
    assert!(detail.starts_with("the campaign has no LLM to analyse conversations with: create an LLM integration"), "{detail}");
    assert!(detail.contains("Settings > LLM Settings"), "{detail}");

    let llm = FakeLlm::start().await;
    let integration = client
        .post("/integrations", json!({"kind": "LLM", "name": "Local", "settings": {"api_base_url": llm.base}, "secrets": {}}))
        .await
        .body["id"]
        .clone();
    let reply = client.send(reqwest::Method::PATCH, &format!("/campaigns/{campaign}"), Some(json!({"name": "Collections", "llm_integration_id": integration}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let detail = client.post(&runs, json!({"mode": "SOMETIMES"})).await.problem(400);
    assert!(detail.contains("unknown variant `SOMETIMES`, expected `RECALCULATE` or `CONTINUE`"), "{detail}");
    client.post(&runs, json!({})).await.problem(400);

    // A run with work to do is in progress; a second one must wait.
    let setup = Setup { app, client: client.clone(), tenant, campaign: campaign.clone() };
    conversations(&setup, &[PAYER_1]).await;
    let run = start(&client, &campaign, "RECALCULATE").await;
    let detail = client.post(&runs, json!({"mode": "CONTINUE"})).await.problem(409);
    assert_eq!(detail, format!("analysis run {} is in progress (0 of 8 values); wait for it to finish or stop it first", run["id"].as_str().expect("id")));
    assert_eq!(client.post(&format!("{runs}/anr_missing/stop"), json!({})).await.problem(404), "analysis run not found");
    assert_eq!(client.get(&format!("/campaigns/{campaign}/analysis/sessions/com_missing")).await.problem(404), "session not found");
}

async fn errors_when_another_tenant_asks(backend: Backend) {
    let llm = FakeLlm::start().await;
    let setup = setup(backend, &llm).await;
    let (client, campaign) = (&setup.client, setup.campaign.as_str());
    let ids = conversations(&setup, &[PAYER_1]).await;
    let run = start(client, campaign, "RECALCULATE").await;
    let run_id = run["id"].as_str().expect("id");
    let other = setup.app.tenant("Globex").await;
    let own = other.campaign("Theirs").await;

    assert_eq!(other.post(&format!("/campaigns/{campaign}/analysis/runs"), json!({"mode": "RECALCULATE"})).await.problem(404), "campaign not found");
    assert_eq!(other.get(&format!("/campaigns/{campaign}/analysis/runs/latest")).await.problem(404), "campaign not found");
    assert_eq!(other.post(&format!("/campaigns/{campaign}/analysis/runs/{run_id}/stop"), json!({})).await.problem(404), "campaign not found");
    assert_eq!(other.post(&format!("/campaigns/{own}/analysis/runs/{run_id}/stop"), json!({})).await.problem(404), "analysis run not found");
    assert_eq!(other.get(&format!("/campaigns/{campaign}/analysis/results")).await.problem(404), "campaign not found");
    assert_eq!(other.get(&format!("/campaigns/{campaign}/analysis/sessions/{}", ids["ann"])).await.problem(404), "campaign not found");
    assert_eq!(other.get(&format!("/campaigns/{own}/analysis/sessions/{}", ids["ann"])).await.problem(404), "session not found");
    assert_eq!(other.get(&format!("/campaigns/{own}/analysis/runs/latest")).await.problem(404), "analysis run not found");
    // The owner's run is untouched.
    assert_eq!(latest(client, campaign).await["status"], "PROGRESS");
}

/// The YAML's schedule starts a Continue calculation on its own when
/// sessions ended since the last one: on its interval, only for what is
/// new, never with nothing to do, and never once the file says `off`.
/// Sessions without a transcript are counted as skipped.
async fn works_when_the_schedule_analyses_ended_sessions_on_its_own(backend: Backend) {
    let llm = FakeLlm::start().await;
    let setup = setup(backend, &llm).await;
    let (client, campaign) = (&setup.client, setup.campaign.as_str());
    let example = repo_file("examples/analytics/debt-collection.yaml");
    assert!(example.contains("  every_minutes: 60\n"), "the example has a schedule");
    upload_yaml(client, campaign, &example.replace("  every_minutes: 60\n", "  every_minutes: 5\n")).await;
    let clock = Arc::new(stratagem_runtime::VirtualClock::new(chrono::Utc::now()));
    let engine = setup.app.engine_with_clock(TEST_ENGINE, clock.clone());
    conversations(&setup, &[PAYER_1, SILENT]).await;

    engine.tick().await.expect("tick");
    let none = client.get(&format!("/campaigns/{campaign}/analysis/runs/latest")).await;
    assert_eq!(none.status, 404, "not due before its interval: {}", none.text);

    clock.advance(chrono::Duration::minutes(6));
    let run = tick_until_finished(&engine, client, campaign).await;
    assert_eq!((run["status"].as_str(), run["mode"].as_str(), run["scheduled"].as_bool()), (Some("DONE"), Some("CONTINUE"), Some(true)), "{run}");
    assert_eq!((run["total"].as_i64(), run["done"].as_i64(), run["skipped"].as_i64()), (Some(8), Some(8), Some(1)), "{run}");
    assert_eq!(llm.calls(), 1);

    conversations(&setup, &[PAYER_2]).await;
    clock.advance(chrono::Duration::minutes(3));
    engine.tick().await.expect("tick");
    assert_eq!(latest(client, campaign).await["id"], run["id"], "the next one is due 5 minutes after the first");
    clock.advance(chrono::Duration::minutes(3));
    let second = tick_until_finished(&engine, client, campaign).await;
    assert_ne!(second["id"], run["id"]);
    assert_eq!((second["scheduled"].as_bool(), second["total"].as_i64(), second["done"].as_i64()), (Some(true), Some(8), Some(8)), "only the new session: {second}");
    assert_eq!(llm.calls(), 2);
    assert_eq!(results(client, campaign).await["promise_to_pay"]["sessions"], 2);

    clock.advance(chrono::Duration::minutes(6));
    engine.tick().await.expect("tick");
    assert_eq!(latest(client, campaign).await["id"], second["id"], "nothing new, no run");

    conversations(&setup, &[DISPUTER]).await;
    upload_yaml(client, campaign, &example.replace("schedule:\n  every_minutes: 60\n", "schedule: off\n")).await;
    clock.advance(chrono::Duration::days(1));
    engine.tick().await.expect("tick");
    assert_eq!(latest(client, campaign).await["id"], second["id"], "`schedule: off` starts nothing");
    assert_eq!(llm.calls(), 2);
    let manual = start(client, campaign, "CONTINUE").await;
    assert_eq!((manual["scheduled"].as_bool(), manual["total"].as_i64()), (Some(false), Some(8)), "{manual}");
}
