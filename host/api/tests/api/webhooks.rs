//! Provider webhooks at `/webhooks/{integration_id}`, outside the API-key
//! auth: each signing provider's correctly signed call is accepted and
//! handed to the engine; unsigned, forged and unknown ones get 401.

use serde_json::{json, Value};
use stratagem_engine::providers::{bird_signature, twilio_signature};

use crate::both_backends;
use crate::support::{App, Backend, Client, TEST_OUTBOUND};

/// The URL a provider calls, as the service under test knows it.
fn webhook_url(integration_id: &str) -> String {
    TEST_OUTBOUND.webhook_url(integration_id)
}

both_backends!(
    works_when_each_provider_signs_its_webhook,
    errors_when_a_webhook_is_unsigned_forged_or_unknown,
    works_when_an_integration_shows_the_url_to_register
);

/// An integration whose provider calls webhooks shows where they go, on
/// every read; one whose provider calls none shows none.
async fn works_when_an_integration_shows_the_url_to_register(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let twilio = integration(&client, "TWILIO", json!({"account_sid": "AC1", "from_number": "+15550009999"}), json!({"auth_token": "tw-token"})).await;
    let fcm = integration(&client, "FCM", json!({"project_id": "p"}), json!({"service_account_json": "{}"})).await;
    let shown = client.get(&format!("/integrations/{twilio}")).await.body;
    assert_eq!(shown["webhook_url"], json!(webhook_url(&twilio)));
    assert!(webhook_url(&twilio).ends_with(&format!("/webhooks/{twilio}")));
    let listed = client.get("/integrations").await.body;
    let url_of = |id: &str| listed.as_array().expect("list").iter().find(|i| i["id"] == id).expect("listed")["webhook_url"].clone();
    assert_eq!(url_of(&twilio), json!(webhook_url(&twilio)));
    assert_eq!(url_of(&fcm), Value::Null, "FCM calls no webhooks");
    let update = json!({"name": "Calls", "settings": {"account_sid": "AC1", "from_number": "+15550009999"}, "secrets": {}});
    let renamed = client.put_raw(&format!("/integrations/{twilio}"), "application/json", update.to_string().into_bytes()).await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(renamed.body["webhook_url"], json!(webhook_url(&twilio)));
}

fn hmac_sha256_hex(key: &str, body: &[u8]) -> String {
    hex::encode(ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes()), body).as_ref())
}

async fn integration(client: &Client, kind: &str, settings: Value, secrets: Value) -> String {
    let reply = client.post("/integrations", json!({"kind": kind, "name": kind, "settings": settings, "secrets": secrets})).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body["id"].as_str().expect("id").to_owned()
}

/// A provider's call: no API key, just what the provider sends.
async fn call(app: &App, path_and_query: &str, content_type: &str, headers: &[(&str, String)], body: &str) -> (u16, String, String) {
    let mut request = app.http.post(format!("{}{path_and_query}", app.base)).header("content-type", content_type).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (status, content_type, response.text().await.expect("body"))
}

/// The integrations of one tenant, one per signing provider, and a valid
/// call for each: (name, path and query, content type, headers, body).
async fn signed_calls(client: &Client) -> Vec<(&'static str, String, &'static str, Vec<(&'static str, String)>, String)> {
    let mut calls = Vec::new();

    let telegram = integration(client, "TELEGRAM", json!({}), json!({"bot_token": "1:A", "webhook_secret": "tg-secret"})).await;
    let body = json!({"update_id": 1, "message": {"message_id": 3, "chat": {"id": 777}, "text": "hello"}}).to_string();
    calls.push(("telegram", format!("/webhooks/{telegram}"), "application/json", vec![("x-telegram-bot-api-secret-token", "tg-secret".into())], body));

    let meta = integration(client, "WHATSAPP_META", json!({"phone_number_id": "1065"}), json!({"access_token": "t", "app_secret": "meta-secret"})).await;
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messages": [{"from": "15551230000", "id": "wamid.1", "type": "text", "text": {"body": "hi"}}]}}]}]})
    .to_string();
    let signature = format!("sha256={}", hmac_sha256_hex("meta-secret", body.as_bytes()));
    calls.push(("meta", format!("/webhooks/{meta}"), "application/json", vec![("x-hub-signature-256", signature)], body));

    let bird = integration(client, "MESSAGEBIRD", json!({"workspace_id": "w", "channel_id": "c"}), json!({"access_key": "k", "signing_key": "bird-key"})).await;
    let body = json!({"service": "channels", "event": "whatsapp.inbound", "payload": {"id": "m1", "direction": "incoming",
        "sender": {"contact": {"identifierValue": "+15551230000"}}, "body": {"type": "text", "text": {"text": "hi"}}}})
    .to_string();
    let signature = bird_signature("bird-key", "1719823259", &webhook_url(&bird), body.as_bytes());
    let headers = vec![("messagebird-signature", signature), ("messagebird-request-timestamp", "1719823259".into())];
    calls.push(("messagebird", format!("/webhooks/{bird}"), "application/json", headers, body));

    let infobip = integration(client, "INFOBIP", json!({"api_base_url": "https://x.api.infobip.com", "sender": "ACME"}), json!({"api_key": "k", "webhook_secret": "ib-secret"})).await;
    let body = json!({"results": [{"messageId": "i1", "from": "15551230000", "to": "ACME", "text": "hi"}], "messageCount": 1}).to_string();
    calls.push(("infobip", format!("/webhooks/{infobip}?secret=ib-secret"), "application/json", vec![], body));

    let twilio = integration(client, "TWILIO", json!({"account_sid": "AC1", "from_number": "+15550009999"}), json!({"auth_token": "tw-token"})).await;
    let params = vec![("CallSid".to_owned(), "CA9".to_owned()), ("CallStatus".to_owned(), "completed".to_owned())];
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
    let signature = twilio_signature("tw-token", &format!("{}?turn=com_1", webhook_url(&twilio)), &params);
    calls.push(("twilio", format!("/webhooks/{twilio}?turn=com_1"), "application/x-www-form-urlencoded", vec![("x-twilio-signature", signature)], body));

    let sip = integration(client, "SIP", json!({"api_base_url": "https://sip.example.com", "caller_id": "+1555"}), json!({"api_key": "sip-key"})).await;
    let body = json!({"event": "status", "call_id": "call-1", "status": "busy"}).to_string();
    let signature = format!("sha256={}", hmac_sha256_hex("sip-key", body.as_bytes()));
    calls.push(("sip", format!("/webhooks/{sip}"), "application/json", vec![("x-stratagem-signature", signature)], body));

    calls
}

async fn works_when_each_provider_signs_its_webhook(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    for (name, path, content_type, headers, body) in signed_calls(&client).await {
        let (status, reply_type, text) = call(&app, &path, content_type, &headers, &body).await;
        assert_eq!(status, 200, "{name}: {text}");
        if name == "twilio" {
            // Twilio reads the answer as the call's next TwiML.
            assert_eq!(reply_type, "text/xml", "{name}");
            assert!(text.starts_with("<Response>"), "{text}");
        } else {
            assert_eq!(serde_json::from_str::<Value>(&text).expect("json"), json!({"accepted": 1}), "{name}");
        }
    }
}

async fn errors_when_a_webhook_is_unsigned_forged_or_unknown(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    for (name, path, content_type, headers, body) in signed_calls(&client).await {
        // Unsigned: the provider's headers and URL secret left out.
        let bare = path.split('?').next().expect("path").to_owned();
        let (status, reply_type, text) = call(&app, &bare, content_type, &[], &body).await;
        assert_eq!(status, 401, "{name} unsigned: {text}");
        assert_eq!(reply_type, "application/problem+json", "{name}");
        let problem: Value = serde_json::from_str(&text).expect("problem");
        assert_eq!(problem["type"], "/problems/webhook-refused", "{name}");
        // Forged: a guessed signature or secret, and another body.
        let guessed: Vec<(&str, String)> = headers
            .iter()
            .map(|(header, value)| match *header {
                "messagebird-request-timestamp" => (*header, value.clone()),
                _ => (*header, format!("{}0", &value[..value.len() - 1])),
            })
            .collect();
        let path = path.replace("secret=ib-secret", "secret=ib-secre0");
        let forged = body.replace("hi", "HI").replace("busy", "failed").replace("completed", "canceled").replace("hello", "HELLO");
        assert_ne!(forged, body, "{name}");
        let (status, _, text) = call(&app, &path, content_type, &guessed, &forged).await;
        assert_eq!(status, 401, "{name} forged: {text}");
    }
    let (status, _, text) = call(&app, "/webhooks/int_does_not_exist", "application/json", &[], "{}").await;
    assert_eq!(status, 401, "{text}");
    let problem: Value = serde_json::from_str(&text).expect("problem");
    assert_eq!(problem["detail"], "this webhook does not verify: unknown integration, or a missing or wrong signature");
    // A webhook needs no API key, and an API key makes nothing verify.
    let (status, _, _) = call(&app, "/webhooks/int_does_not_exist", "application/json", &[("authorization", format!("Bearer {}", client.key))], "{}").await;
    assert_eq!(status, 401);
}
