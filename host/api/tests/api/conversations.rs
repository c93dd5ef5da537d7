//! A conversation on Telegram with an AI agent, end to end through the
//! public surface: the start phrase goes out through the Bot API, the
//! contact's answer arrives as a signed webhook (a redelivery is stored
//! once), the agent answers through an OpenAI-compatible endpoint,
//! CONTACT_ANSWER sees the agent's message, the agent ends the session,
//! session results are extracted into the campaign's result fields and
//! AGGREGATION plans what comes next. A contact who never answers is
//! ended by the inactivity timeout as NO_RESPONSE, without asking the LLM.
//!
//! One local server plays both Telegram and the LLM and records every
//! request it gets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::both_backends;
use crate::support::{App, Backend, Client};

both_backends!(
    works_when_an_agent_holds_a_telegram_conversation,
    works_when_an_agent_holds_an_email_conversation,
    works_when_the_contact_answers_before_the_send_returns,
    works_when_the_contact_writes_again_while_the_agent_answers
);

#[derive(Clone, Default)]
struct Provider {
    /// (chat_id, text) of each Bot API sendMessage.
    sent: Arc<Mutex<Vec<(i64, String)>>>,
    /// The body of each chat completion request.
    completions: Arc<Mutex<Vec<Value>>>,
    /// A webhook to deliver, and see answered, before the next
    /// sendMessage returns: the contact answering faster than the send.
    answer_during_send: Arc<Mutex<Option<reqwest::RequestBuilder>>>,
    /// A webhook to deliver, and see answered, before the next chat
    /// completion returns: the contact writing again while the agent thinks.
    answer_during_completion: Arc<Mutex<Option<reqwest::RequestBuilder>>>,
}

async fn send_message(State(provider): State<Provider>, Path(bot): Path<String>, Json(body): Json<Value>) -> Json<Value> {
    assert_eq!(bot, "bot123:ABC", "the token is in the path");
    let chat = body["chat_id"].as_i64().expect("numeric chat_id");
    let answer = provider.answer_during_send.lock().expect("lock").take();
    if let Some(answer) = answer {
        let status = answer.send().await.expect("webhook").status();
        assert_eq!(status, 200, "the early answer is accepted");
    }
    let mut sent = provider.sent.lock().expect("lock");
    sent.push((chat, body["text"].as_str().expect("text").to_owned()));
    Json(json!({"ok": true, "result": {"message_id": 100 + sent.len(), "chat": {"id": chat}, "text": body["text"]}}))
}

/// Answers like a model would: the outcome when asked to report one, else
/// the agent's next line — ending the session when the contact's latest
/// message says bye.
async fn chat_completion(State(provider): State<Provider>, headers: axum::http::HeaderMap, Json(body): Json<Value>) -> Json<Value> {
    assert_eq!(headers.get("authorization").and_then(|v| v.to_str().ok()), Some("Bearer sk-local"));
    assert_eq!(body["model"], "collector-model", "the campaign's model");
    provider.completions.lock().expect("lock").push(body.clone());
    let answer = provider.answer_during_completion.lock().expect("lock").take();
    if let Some(answer) = answer {
        let status = answer.send().await.expect("webhook").status();
        assert_eq!(status, 200, "the message written meanwhile is accepted");
    }
    let messages = body["messages"].as_array().expect("messages");
    let system = messages[0]["content"].as_str().unwrap_or_default();
    let last = messages.iter().rev().find(|m| m["role"] == "user").and_then(|m| m["content"].as_str()).unwrap_or_default().to_lowercase();
    let content = if system.contains("report its outcome") {
        assert!(system.contains("\"PromiseDate\""), "the campaign's result codes are asked for: {system}");
        json!({"OutcomeStatus": "promise to pay", "PromiseDate": "2031-01-06T09:00:00"}).to_string()
    } else if last.contains("bye") {
        json!({"reply": "Thank you, goodbye!", "end_session": true}).to_string()
    } else {
        assert!(system.starts_with("You collect debts politely."), "the agent's instructions lead: {system}");
        json!({"reply": "Thanks! I note your promise to pay. Which day?", "end_session": false}).to_string()
    };
    Json(json!({"id": "cmpl-1", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}}))
}

async fn provider() -> (String, Provider) {
    let provider = Provider::default();
    let app = Router::new()
        .route("/{bot}/sendMessage", post(send_message))
        .route("/v1/chat/completions", post(chat_completion))
        .with_state(provider.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, provider)
}

async fn created(client: &Client, path: &str, body: Value) -> String {
    let reply = client.post(path, body).await;
    assert_eq!(reply.status, 201, "{path}: {}", reply.text);
    reply.body["id"].as_str().expect("id").to_owned()
}

/// Waits until `done` holds for the recorded requests.
async fn until<T>(what: &str, mut done: impl FnMut() -> Option<T>) -> T {
    // Two minutes: the whole suite runs at once on two cores.
    for _ in 0..1200 {
        if let Some(value) = done() {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}")
}

/// The contact once `ready` holds for it, or as it is after a minute
/// (the assertions that follow then show what is missing).
async fn contact_once(client: &Client, campaign: &str, object_id: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let mut found = contact(client, campaign, object_id).await;
    for _ in 0..600 {
        if ready(&found) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        found = contact(client, campaign, object_id).await;
    }
    found
}

/// A session's messages as (role, content).
fn transcript(session: &Value) -> Vec<(&str, &str)> {
    let messages = session["messages"].as_array().expect("transcript");
    messages.iter().map(|m| (m["role"].as_str().expect("role"), m["content"].as_str().expect("content"))).collect()
}

async fn contact(client: &Client, campaign: &str, object_id: &str) -> Value {
    client.get(&format!("/campaigns/{campaign}/contacts/{object_id}")).await.body
}

/// The local model, the bot (secret token `tg-secret`) and the agent of a
/// Telegram campaign whose provider is at `base`.
async fn telegram_accounts(client: &Client, base: &str) -> (String, String, String) {
    let llm = created(client, "/integrations", json!({"kind": "LLM", "name": "Local model",
        "settings": {"api_base_url": format!("{base}/v1")}, "secrets": {"api_key": "sk-local"}})).await;
    let bot = created(client, "/integrations", json!({"kind": "TELEGRAM", "name": "Collections bot",
        "settings": {"api_base_url": base}, "secrets": {"bot_token": "123:ABC", "webhook_secret": "tg-secret"}})).await;
    let agent = created(client, "/agents", json!({"name": "Collector", "instructions": "You collect debts politely."})).await;
    (llm, bot, agent)
}

/// A campaign (`campaign`: its JSON, the model's settings added) whose
/// one Telegram stage opens with "Hello {{name}}", with Paula (chat 4242)
/// imported; not yet RUNNING. Returns the campaign and the bot.
async fn paula_on_telegram(client: &Client, base: &str, mut campaign: Value) -> (String, String) {
    let (llm, bot, agent) = telegram_accounts(client, base).await;
    campaign["llm_integration_id"] = json!(llm);
    campaign["llm_model"] = json!("collector-model");
    let campaign = created(client, "/campaigns", campaign).await;
    created(client, &format!("/campaigns/{campaign}/stages"), json!({"name": "1. First contact", "channel": "TELEGRAM",
        "agent_id": agent, "settings": {"integration_id": bot, "start_phrase": "Hello {{name}}"}})).await;
    client.strategy(&campaign, "DATA_LOAD", "examples/simulated/data_load.py").await;
    let csv = "object_id,external_id,name,email,phone,telegram_chat_id,amount_due,persona\nP1,U1,Paula Payer,p@example.com,+1,4242,120 EUR,paid\n";
    let job = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", csv.as_bytes().to_vec()).await;
    assert_eq!(client.wait_for_import(job.body["id"].as_str().expect("job")).await["accepted"], 1);
    (campaign, bot)
}

/// The contact writes to the bot: a Telegram update, as Telegram posts it.
async fn write_to_bot(app: &App, bot: &str, secret: &str, update_id: i64, text: &str) -> u16 {
    let response = bot_update(app, bot, secret, update_id, text).send().await.expect("webhook");
    response.status().as_u16()
}

fn bot_update(app: &App, bot: &str, secret: &str, update_id: i64, text: &str) -> reqwest::RequestBuilder {
    let update = json!({"update_id": update_id, "message": {"message_id": update_id, "date": 1_790_000_000,
        "chat": {"id": 4242, "type": "private"}, "from": {"id": 4242, "is_bot": false, "first_name": "Paula"}, "text": text}});
    app.http.post(format!("{}/webhooks/{bot}", app.base)).header("X-Telegram-Bot-Api-Secret-Token", secret).json(&update)
}

async fn works_when_an_agent_holds_a_telegram_conversation(backend: Backend) {
    let app = App::start_with_session_timeout(backend, chrono::Duration::seconds(10)).await;
    let client = app.tenant("Acme").await;
    let (base, provider) = provider().await;

    let (llm, bot, agent) = telegram_accounts(&client, &base).await;
    let campaign = created(&client, "/campaigns", json!({"name": "Telegram collections", "llm_integration_id": llm,
        "llm_model": "collector-model", "result_fields": [{"code": "PromiseDate", "name": "Promise date", "description": "When the contact promised to pay"}]})).await;
    created(&client, &format!("/campaigns/{campaign}/stages"), json!({"name": "1. First contact", "channel": "TELEGRAM",
        "agent_id": agent, "settings": {"integration_id": bot, "start_phrase": "Hello {{name}}, about your balance of {{parameters.amount_due}}"}})).await;
    created(&client, &format!("/campaigns/{campaign}/stages"), json!({"name": "2. Retry", "channel": "SIMULATED"})).await;
    client.strategy(&campaign, "DATA_LOAD", "examples/simulated/data_load.py").await;
    client.strategy(&campaign, "AGGREGATION", "examples/simulated/aggregation.py").await;
    client.strategy(&campaign, "CONTACT_ANSWER", "examples/debt-collection/contact_answer.py").await;
    let csv = "object_id,external_id,name,email,phone,telegram_chat_id,amount_due,persona\n\
               P1,U1,Paula Payer,p@example.com,+1,4242,120 EUR,paid\n\
               N1,U2,Nora Nobody,n@example.com,+2,5151,80 EUR,no_response\n";
    let job = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", csv.as_bytes().to_vec()).await;
    assert_eq!(client.wait_for_import(job.body["id"].as_str().expect("job")).await["accepted"], 2);
    for status in ["CONFIGURED", "RUNNING"] {
        assert_eq!(client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await.status, 200);
    }

    // The start phrase, filled in, reaches each contact's chat.
    let openings = until("both openings", || {
        let sent = provider.sent.lock().expect("lock").clone();
        (sent.len() >= 2).then_some(sent)
    })
    .await;
    assert!(openings.contains(&(4242, "Hello Paula Payer, about your balance of 120 EUR".into())), "{openings:?}");
    assert!(openings.contains(&(5151, "Hello Nora Nobody, about your balance of 80 EUR".into())), "{openings:?}");
    assert!(provider.completions.lock().expect("lock").is_empty(), "a start phrase needs no LLM");

    // A forged webhook is refused; the real one, delivered twice, is stored once.
    assert_eq!(write_to_bot(&app, &bot, "guessed", 1, "I will pay").await, 401);
    assert_eq!(write_to_bot(&app, &bot, "tg-secret", 1, "Hi, I can pay part of it").await, 200);
    assert_eq!(write_to_bot(&app, &bot, "tg-secret", 1, "Hi, I can pay part of it").await, 200);
    until("the agent's reply", || {
        provider.sent.lock().expect("lock").iter().any(|(chat, text)| *chat == 4242 && text.contains("promise to pay")).then_some(())
    })
    .await;
    let replies = provider.sent.lock().expect("lock").iter().filter(|(chat, _)| *chat == 4242).count();
    assert_eq!(replies, 2, "one opening and one reply: the redelivered update was answered once");

    // CONTACT_ANSWER saw the agent's message while the session is open.
    let paula = contact_once(&client, &campaign, "P1", |paula| paula["current_stage"] == "Payment Promised").await;
    assert_eq!(paula["current_stage"], "Payment Promised", "{paula}");
    assert_eq!(paula["communications"][0]["status"]["status"], "IN_PROGRESS", "the session is still open: {paula}");

    // The contact says goodbye: the agent ends the session, results are extracted.
    assert_eq!(write_to_bot(&app, &bot, "tg-secret", 2, "Monday then. Bye!").await, 200);
    let paula = contact_once(&client, &campaign, "P1", |paula| paula["communications"][0]["status"]["status"] == "COMPLETED").await;
    let session = &paula["sessions"][0];
    assert_eq!(session["session_results"], json!({"OutcomeStatus": "PROMISE_TO_PAY", "PromiseDate": "2031-01-06T09:00:00"}), "{paula}");
    assert_eq!(paula["results"]["PromiseDate"], "2031-01-06T09:00:00", "custom result field filled: {paula}");
    assert_eq!(
        paula["result_view"][2],
        json!({"code": "PromiseDate", "name": "Promise date", "description": "When the contact promised to pay", "value": "2031-01-06T09:00:00"}),
        "360 view results carry the field's name: {paula}"
    );
    assert_eq!((paula["result_view"][0]["code"].as_str(), paula["result_view"][1]["code"].as_str()), (Some("ResultFlag"), Some("ResultDatetime")));
    assert_eq!(paula["communications"][1]["stage_name"], "2. Retry", "AGGREGATION planned the promise check: {paula}");
    assert_eq!(
        transcript(session),
        [
            ("AGENT", "Hello Paula Payer, about your balance of 120 EUR"),
            ("CONTACT", "Hi, I can pay part of it"),
            ("AGENT", "Thanks! I note your promise to pay. Which day?"),
            ("CONTACT", "Monday then. Bye!"),
            ("AGENT", "Thank you, goodbye!"),
        ]
    );

    // Nora never wrote: the inactivity timeout (10 s here) ends her session
    // without the LLM.
    let mut nora = contact(&client, &campaign, "N1").await;
    for _ in 0..300 {
        if nora["sessions"][0]["session_results"].is_object() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        nora = contact(&client, &campaign, "N1").await;
    }
    assert_eq!(nora["sessions"][0]["session_results"], json!({"OutcomeStatus": "NO_RESPONSE"}), "{nora}");
    let completions = provider.completions.lock().expect("lock").clone();
    let extractions = completions.iter().filter(|body| body["messages"][0]["content"].as_str().unwrap_or_default().contains("report its outcome")).count();
    assert_eq!((completions.len(), extractions), (3, 1), "two replies and one extraction, all for Paula");

    // Each answer's tokens count in the tenant's usage, by what they were for.
    let usage = client.get("/usage").await.body;
    let tokens = |used_for: &str| {
        let rows = usage["rows"].as_array().expect("rows");
        rows.iter().filter(|row| row["metric"] == "llm_tokens" && row["dimension"] == used_for).map(|row| row["value"].as_u64().expect("value")).sum::<u64>()
    };
    assert_eq!((tokens("conversation"), tokens("extraction")), (2 * 42, 42), "{usage}");
}

/// The contact's reply, as an inbound-mail service posts it, signed with
/// the SMTP integration's webhook secret.
async fn reply_by_email(app: &App, integration: &str, secret: &str, message_id: &str, text: &str) -> u16 {
    let body = json!({"from": "Paula Payer <Paula@Example.com>", "text": text, "message_id": message_id}).to_string();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let signature = format!("sha256={}", hex::encode(ring::hmac::sign(&key, body.as_bytes()).as_ref()));
    let response = app
        .http
        .post(format!("{}/webhooks/{integration}", app.base))
        .header("content-type", "application/json")
        .header("X-Stratagem-Signature", signature)
        .body(body)
        .send()
        .await
        .expect("webhook");
    response.status().as_u16()
}

async fn works_when_an_agent_holds_an_email_conversation(backend: Backend) {
    let app = App::start_with_session_timeout(backend, chrono::Duration::hours(1)).await;
    let client = app.tenant("Acme").await;
    let (base, provider) = provider().await;
    let (port, mailbox) = crate::email::smtp_server().await;

    let llm = created(&client, "/integrations", json!({"kind": "LLM", "name": "Local model",
        "settings": {"api_base_url": format!("{base}/v1")}, "secrets": {"api_key": "sk-local"}})).await;
    let mail = created(&client, "/integrations", json!({"kind": "SMTP", "name": "Billing mail",
        "settings": {"host": "127.0.0.1", "port": port, "from_address": "billing@example.com", "tls": "none"},
        "secrets": {"webhook_secret": "mail-secret"}})).await;
    let agent = created(&client, "/agents", json!({"name": "Collector", "instructions": "You collect debts politely."})).await;
    let campaign = created(&client, "/campaigns", json!({"name": "Email collections", "llm_integration_id": llm,
        "llm_model": "collector-model", "result_fields": [{"code": "PromiseDate", "name": "Promise date"}]})).await;
    created(&client, &format!("/campaigns/{campaign}/stages"), json!({"name": "1. First contact", "channel": "EMAIL_COMMUNICATION",
        "agent_id": agent, "settings": {"integration_id": mail, "email_subject": "Invoice {{object_id}}",
        "email_template": "Dear {{name}}, please pay {{parameters.amount_due}}."}})).await;
    created(&client, &format!("/campaigns/{campaign}/stages"), json!({"name": "2. Retry", "channel": "SIMULATED"})).await;
    client.strategy(&campaign, "DATA_LOAD", "examples/simulated/data_load.py").await;
    client.strategy(&campaign, "AGGREGATION", "examples/simulated/aggregation.py").await;
    let csv = "object_id,external_id,name,email,phone,amount_due\nP1,U1,Paula Payer,paula@example.com,+1,120 EUR\n";
    let job = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", csv.as_bytes().to_vec()).await;
    assert_eq!(client.wait_for_import(job.body["id"].as_str().expect("job")).await["accepted"], 1);
    for status in ["CONFIGURED", "RUNNING"] {
        assert_eq!(client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await.status, 200);
    }

    let first = until("the opening email", || mailbox.lock().expect("lock").first().cloned()).await;
    assert!(first.contains("Subject: Invoice P1") && first.contains("Dear Paula Payer, please pay 120 EUR."), "{first}");

    // A forged reply is refused; the signed one (quoted history and all) is answered.
    assert_eq!(reply_by_email(&app, &mail, "guessed", "<r1@mail>", "I will pay").await, 401);
    let reply = "Hi, I can pay part of it\n\nOn Mon, Billing wrote:\n> Dear Paula Payer, please pay 120 EUR.";
    assert_eq!(reply_by_email(&app, &mail, "mail-secret", "<r1@mail>", reply).await, 200);
    let answer = until("the agent's emailed reply", || mailbox.lock().expect("lock").get(1).cloned()).await;
    assert!(answer.contains("Subject: Re: Invoice P1"), "{answer}");
    assert!(answer.contains("I note your promise to pay"), "{answer}");

    assert_eq!(reply_by_email(&app, &mail, "mail-secret", "<r2@mail>", "Monday then. Bye!").await, 200);
    let paula = contact_once(&client, &campaign, "P1", |paula| paula["sessions"][0]["session_results"].is_object()).await;
    let session = &paula["sessions"][0];
    assert_eq!(session["channel"], "EMAIL_COMMUNICATION");
    assert_eq!(session["session_results"]["OutcomeStatus"], "PROMISE_TO_PAY", "{paula}");
    let contact_lines: Vec<&str> = session["messages"]
        .as_array()
        .expect("transcript")
        .iter()
        .filter(|m| m["role"] == "CONTACT")
        .map(|m| m["content"].as_str().expect("content"))
        .collect();
    assert_eq!(contact_lines, ["Hi, I can pay part of it", "Monday then. Bye!"], "quoted history cut off");
    assert_eq!(mailbox.lock().expect("lock").len(), 3, "opening, one reply per contact message");
    assert_eq!(provider.sent.lock().expect("lock").len(), 0, "nothing went to Telegram");
}

/// The contact answers while the engine is still sending the opening (the
/// provider has delivered it, the engine has not yet recorded the session).
/// The answer is kept, the session takes it when it opens, and the agent
/// answers it: nothing a fast contact writes is lost.
async fn works_when_the_contact_answers_before_the_send_returns(backend: Backend) {
    let app = App::start_with_session_timeout(backend, chrono::Duration::hours(1)).await;
    let client = app.tenant("Acme").await;
    let (base, provider) = provider().await;

    let (campaign, bot) = paula_on_telegram(&client, &base, json!({"name": "Fast answers"})).await;

    *provider.answer_during_send.lock().expect("lock") = Some(bot_update(&app, &bot, "tg-secret", 7, "Hi! I paid yesterday"));
    // A stranger's message and one that came before the send are not
    // taken by the session.
    assert_eq!(write_to_bot(&app, &bot, "tg-secret", 6, "Who is this?").await, 200);
    for status in ["CONFIGURED", "RUNNING"] {
        assert_eq!(client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await.status, 200);
    }

    until("the agent's answer to the early message", || {
        provider.sent.lock().expect("lock").iter().any(|(chat, text)| *chat == 4242 && text.contains("promise to pay")).then_some(())
    })
    .await;
    let paula = contact_once(&client, &campaign, "P1", |paula| paula["sessions"][0]["messages"].as_array().is_some_and(|m| m.len() == 3)).await;
    assert_eq!(
        transcript(&paula["sessions"][0]),
        [("AGENT", "Hello Paula Payer"), ("CONTACT", "Hi! I paid yesterday"), ("AGENT", "Thanks! I note your promise to pay. Which day?")],
        "{paula}"
    );
    assert_eq!(provider.completions.lock().expect("lock").len(), 1, "the early message was answered once");
}

/// The contact writes again while the agent's LLM is still composing its
/// answer to the first message. The agent's answer goes out, and the
/// second message is answered on a later tick, with the whole transcript:
/// a message that arrives mid-answer is not taken as answered.
async fn works_when_the_contact_writes_again_while_the_agent_answers(backend: Backend) {
    let app = App::start_with_session_timeout(backend, chrono::Duration::hours(1)).await;
    let client = app.tenant("Acme").await;
    let (base, provider) = provider().await;

    let campaign = json!({"name": "Chatty contact", "result_fields": [{"code": "PromiseDate", "name": "Promise date"}]});
    let (campaign, bot) = paula_on_telegram(&client, &base, campaign).await;
    for status in ["CONFIGURED", "RUNNING"] {
        assert_eq!(client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await.status, 200);
    }
    until("the opening", || provider.sent.lock().expect("lock").first().cloned()).await;

    *provider.answer_during_completion.lock().expect("lock") = Some(bot_update(&app, &bot, "tg-secret", 2, "Monday then. Bye!"));
    assert_eq!(write_to_bot(&app, &bot, "tg-secret", 1, "Hi, I can pay part of it").await, 200);

    let paula = contact_once(&client, &campaign, "P1", |paula| paula["sessions"][0]["session_results"].is_object()).await;
    assert_eq!(
        transcript(&paula["sessions"][0]),
        [
            ("AGENT", "Hello Paula Payer"),
            ("CONTACT", "Hi, I can pay part of it"),
            ("CONTACT", "Monday then. Bye!"),
            ("AGENT", "Thanks! I note your promise to pay. Which day?"),
            ("AGENT", "Thank you, goodbye!"),
        ],
        "{paula}"
    );
    assert_eq!(paula["sessions"][0]["session_results"]["OutcomeStatus"], "PROMISE_TO_PAY", "{paula}");
    let completions = provider.completions.lock().expect("lock").clone();
    let user_lines = |completion: &Value| -> Vec<String> {
        let messages = completion["messages"].as_array().expect("messages");
        messages.iter().filter(|m| m["role"] == "user").map(|m| m["content"].as_str().expect("content").to_owned()).collect()
    };
    assert_eq!(completions.len(), 3, "two replies and the extraction");
    assert_eq!(user_lines(&completions[0]), ["Hi, I can pay part of it"]);
    assert_eq!(user_lines(&completions[1]), ["Hi, I can pay part of it", "Monday then. Bye!"], "the second answer saw the message written meanwhile");
    assert_eq!(provider.sent.lock().expect("lock").len(), 3, "the opening and two replies");
}
