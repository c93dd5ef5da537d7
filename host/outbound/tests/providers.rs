//! Each provider adapter against a local server that plays the provider:
//! it records the exact request (method, path, auth, body) and answers as
//! the provider's public API documents — success, a refusal (4xx) and an
//! outage (5xx). Webhooks are fed back signed, unsigned and forged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{json, Value};
use stratagem_domain::stage::ChannelSettings;
use stratagem_domain::{Channel, Contact, IntegrationKind, JsonMap};
use stratagem_outbound::providers::{
    self, bird_signature, twilio_signature, Account, CallOutcome, Delivered, InboundEvent, Outbound, ProviderError,
    WebhookError, WebhookRequest,
};

/// One request the fake provider received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

type Answer = Arc<dyn Fn(&Seen) -> (u16, Value) + Send + Sync>;

/// A provider on 127.0.0.1:0 that records every request and answers with
/// `answer`.
struct FakeProvider {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeProvider {
    async fn start(answer: impl Fn(&Seen) -> (u16, Value) + Send + Sync + 'static) -> Self {
        let answer: Answer = Arc::new(answer);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let answer = answer.clone();
            let record = record.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20).await.expect("body").to_vec();
                let headers = parts
                    .headers
                    .iter()
                    .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap_or_default().to_owned()))
                    .collect();
                let seen = Seen { method: parts.method.to_string(), path: parts.uri.path().to_owned(), headers, body };
                let (status, reply) = answer(&seen);
                record.lock().expect("lock").push(seen);
                (axum::http::StatusCode::from_u16(status).expect("status"), axum::Json(reply))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeProvider { base, seen }
    }

    /// Answers every request the same.
    async fn answering(status: u16, reply: Value) -> Self {
        FakeProvider::start(move |_| (status, reply.clone())).await
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    fn only_request(&self) -> Seen {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "{requests:?}");
        requests[0].clone()
    }
}

fn map(value: Value) -> JsonMap {
    value.as_object().expect("object").clone()
}

fn account(kind: IntegrationKind, base: &str, settings: Value, secrets: Value) -> Account {
    let mut settings = map(settings);
    settings.insert("api_base_url".into(), base.into());
    Account { id: "int_test1".into(), kind, settings, secrets: map(secrets) }
}

fn contact(parameters: Value) -> Contact {
    serde_json::from_value(json!({
        "object_id": "CONTRACT-1", "external_id": "EXT-1", "name": "Ana", "phone": "+15551230000", "parameters": parameters
    }))
    .expect("contact")
}

/// A delivery to make: everything an [`Outbound`] borrows.
struct Delivery {
    account: Account,
    channel: Channel,
    stage: ChannelSettings,
    contact: Contact,
    address: Option<String>,
    /// The communication's `template_variables`.
    variables: JsonMap,
}

impl Delivery {
    fn new(account: Account, channel: Channel) -> Self {
        Delivery { account, channel, stage: ChannelSettings::default(), contact: contact(json!({})), address: None, variables: JsonMap::new() }
    }

    async fn deliver(&self) -> Result<Delivered, ProviderError> {
        let outbound = Outbound {
            idempotency_key: "com_42",
            account: &self.account,
            channel: self.channel,
            stage: &self.stage,
            contact: &self.contact,
            text: "Hello Ana, your payment is due.",
            address: self.address.as_deref(),
            webhook_url: &webhook_url("int_test1"),
            variables: &self.variables,
            // The tests' servers listen on 127.0.0.1.
            egress: stratagem_outbound::EgressPolicy { allow_private_endpoints: true },
        };
        let provider = providers::provider(self.account.kind).expect("a provider for this kind");
        provider.deliver(&reqwest::Client::new(), &outbound).await
    }
}

/// Where the service under test takes webhooks.
fn webhook_url(integration_id: &str) -> String {
    stratagem_outbound::OutboundConfig::DEFAULT.webhook_url(integration_id)
}

fn webhook(account: &Account, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Vec<InboundEvent>, WebhookError> {
    let headers: Vec<(String, String)> = headers.iter().map(|(name, value)| (name.to_ascii_lowercase(), (*value).to_owned())).collect();
    let request = WebhookRequest { url, headers: &headers, body };
    providers::provider(account.kind).expect("provider").receive(account, &request)
}

fn hmac_sha256_hex(key: &str, body: &[u8]) -> String {
    hex::encode(ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes()), body).as_ref())
}

fn assert_unauthorized(result: Result<Vec<InboundEvent>, WebhookError>) {
    assert!(matches!(result, Err(WebhookError::Unauthorized(_))), "{result:?}");
}

fn assert_rejected(result: Result<Delivered, ProviderError>, text: &str) {
    match result {
        Err(ProviderError::Rejected { detail, .. }) => assert!(detail.contains(text), "{detail}"),
        other => panic!("expected Rejected containing {text:?}, got {other:?}"),
    }
}

fn assert_unavailable(result: Result<Delivered, ProviderError>) {
    assert!(matches!(result, Err(ProviderError::Unavailable { .. })), "{result:?}");
}

// ---------------------------------------------------------------- Telegram

fn telegram(base: &str, secrets: Value) -> Delivery {
    let mut send = Delivery::new(account(IntegrationKind::Telegram, base, json!({}), secrets), Channel::Telegram);
    send.contact = contact(json!({"telegram_chat_id": "12345"}));
    send
}

#[tokio::test]
async fn works_when_telegram_sends_to_the_contacts_chat() {
    let fake = FakeProvider::answering(200, json!({"ok": true, "result": {"message_id": 7, "chat": {"id": 12345}, "text": "…"}})).await;
    let delivered = telegram(&fake.base, json!({"bot_token": "123:ABC"})).deliver().await.expect("delivered");
    assert_eq!(delivered, Delivered { provider_ref: "12345:7".into(), address: "12345".into() });
    let request = fake.only_request();
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/bot123:ABC/sendMessage"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.json(), json!({"chat_id": 12345, "text": "Hello Ana, your payment is due."}));
}

#[tokio::test]
async fn errors_when_telegram_refuses_or_is_down() {
    let refused = FakeProvider::answering(400, json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"})).await;
    assert_rejected(telegram(&refused.base, json!({"bot_token": "t"})).deliver().await, "chat not found");
    let limited = FakeProvider::answering(429, json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 5"})).await;
    assert_unavailable(telegram(&limited.base, json!({"bot_token": "t"})).deliver().await);
    let down = FakeProvider::answering(502, json!({})).await;
    assert_unavailable(telegram(&down.base, json!({"bot_token": "t"})).deliver().await);
}

#[tokio::test]
async fn errors_when_a_telegram_contact_has_no_chat() {
    let fake = FakeProvider::answering(200, json!({})).await;
    let mut send = telegram(&fake.base, json!({"bot_token": "t"}));
    send.contact = contact(json!({}));
    match send.deliver().await {
        Err(ProviderError::Misconfigured(message)) => assert!(message.contains("telegram_chat_id"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(fake.requests().is_empty());
}

#[test]
fn works_when_a_telegram_update_carries_the_secret_token() {
    let account = account(IntegrationKind::Telegram, "http://unused", json!({}), json!({"bot_token": "t", "webhook_secret": "s3cret"}));
    let update = json!({"update_id": 900, "message": {"message_id": 8, "chat": {"id": 12345, "type": "private"}, "text": "I will pay Friday"}});
    let body = update.to_string();
    let events = webhook(&account, "http://x/webhooks/int_test1", &[("X-Telegram-Bot-Api-Secret-Token", "s3cret")], body.as_bytes());
    assert_eq!(
        events,
        Ok(vec![InboundEvent::Message { address: "12345".into(), text: "I will pay Friday".into(), provider_message_id: "12345:8".into() }])
    );
}

#[test]
fn errors_when_a_telegram_update_is_unsigned_or_forged() {
    let body = json!({"update_id": 1, "message": {"message_id": 1, "chat": {"id": 1}, "text": "hi"}}).to_string();
    let account = account(IntegrationKind::Telegram, "http://unused", json!({}), json!({"bot_token": "t", "webhook_secret": "s3cret"}));
    assert_unauthorized(webhook(&account, "http://x", &[], body.as_bytes()));
    assert_unauthorized(webhook(&account, "http://x", &[("X-Telegram-Bot-Api-Secret-Token", "guess")], body.as_bytes()));
    let unset = Account { secrets: map(json!({"bot_token": "t"})), ..account };
    match webhook(&unset, "http://x", &[("X-Telegram-Bot-Api-Secret-Token", "")], body.as_bytes()) {
        Err(WebhookError::Unauthorized(message)) => assert!(message.contains("set secrets.webhook_secret"), "{message}"),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------- WhatsApp (Meta)

fn whatsapp(base: &str) -> Delivery {
    let account = account(
        IntegrationKind::WhatsappMeta,
        base,
        json!({"phone_number_id": "106540352242922", "template_language": "es"}),
        json!({"access_token": "EAAG-token", "app_secret": "app-secret"}),
    );
    let mut send = Delivery::new(account, Channel::Whatsapp);
    send.stage.template_name = Some("debt_reminder".into());
    send.stage.start_state = Some("greet".into());
    send.variables = map(json!({"amount_due": "120 EUR", "days": 14}));
    send
}

const META_ANSWER: &str = r#"{"messaging_product": "whatsapp", "contacts": [{"input": "+15551230000", "wa_id": "15551230000"}], "messages": [{"id": "wamid.HBgLMTU1"}]}"#;

#[tokio::test]
async fn works_when_whatsapp_opens_with_the_stage_template_and_replies_with_text() {
    let fake = FakeProvider::answering(200, serde_json::from_str(META_ANSWER).expect("json")).await;
    let mut send = whatsapp(&fake.base);
    let delivered = send.deliver().await.expect("delivered");
    assert_eq!(delivered, Delivered { provider_ref: "wamid.HBgLMTU1".into(), address: "15551230000".into() });
    send.address = Some("15551230000".into());
    send.deliver().await.expect("reply delivered");
    let requests = fake.requests();
    for request in &requests {
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/v21.0/106540352242922/messages"));
        assert_eq!(request.header("authorization"), Some("Bearer EAAG-token"));
    }
    assert_eq!(
        requests[0].json(),
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+15551230000", "type": "template",
               "template": {"name": "debt_reminder", "language": {"code": "es"}, "components": [{"type": "body", "parameters": [
                   {"type": "text", "parameter_name": "amount_due", "text": "120 EUR"},
                   {"type": "text", "parameter_name": "days", "text": "14"}]}]},
               "biz_opaque_callback_data": "com_42"})
    );
    assert_eq!(
        requests[1].json(),
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15551230000", "type": "text",
               "text": {"body": "Hello Ana, your payment is due."}, "biz_opaque_callback_data": "com_42"})
    );
}

#[tokio::test]
async fn errors_when_meta_refuses_or_is_down() {
    let refused = FakeProvider::answering(
        400,
        json!({"error": {"message": "(#132001) Template name does not exist in the translation", "type": "OAuthException", "code": 132001}}),
    )
    .await;
    assert_rejected(whatsapp(&refused.base).deliver().await, "Template name does not exist");
    let down = FakeProvider::answering(503, json!({"error": {"message": "Service temporarily unavailable", "code": 2}})).await;
    assert_unavailable(whatsapp(&down.base).deliver().await);
}

fn meta_payload() -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "15551230000"}],
        "messages": [{"from": "15551230000", "id": "wamid.IN1", "timestamp": "1700000000", "type": "text", "text": {"body": "Can I pay half?"}}],
        "statuses": [
            {"id": "wamid.HBgLMTU1", "status": "delivered", "timestamp": "1700000001", "recipient_id": "15551230000"},
            {"id": "wamid.OTHER", "status": "failed", "timestamp": "1700000002", "recipient_id": "15551230000",
             "errors": [{"code": 131026, "title": "Message undeliverable"}]},
            {"id": "wamid.READ", "status": "read", "timestamp": "1700000003", "recipient_id": "15551230000"}
        ]
    }}]}]})
    .to_string()
}

#[test]
fn works_when_a_meta_webhook_is_signed_with_the_app_secret() {
    let account = whatsapp("http://unused").account;
    let body = meta_payload();
    let signature = format!("sha256={}", hmac_sha256_hex("app-secret", body.as_bytes()));
    let events = webhook(&account, "http://x", &[("X-Hub-Signature-256", &signature)], body.as_bytes()).expect("verified");
    assert_eq!(
        events,
        vec![
            InboundEvent::Message { address: "15551230000".into(), text: "Can I pay half?".into(), provider_message_id: "wamid.IN1".into() },
            InboundEvent::Status { provider_ref: "wamid.HBgLMTU1".into(), outcome: CallOutcome::Delivered },
            InboundEvent::Status { provider_ref: "wamid.OTHER".into(), outcome: CallOutcome::Failed("Message undeliverable".into()) },
        ]
    );
}

#[test]
fn errors_when_a_meta_webhook_is_unsigned_or_forged() {
    let account = whatsapp("http://unused").account;
    let body = meta_payload();
    assert_unauthorized(webhook(&account, "http://x", &[], body.as_bytes()));
    let forged = format!("sha256={}", hmac_sha256_hex("not-the-secret", body.as_bytes()));
    assert_unauthorized(webhook(&account, "http://x", &[("X-Hub-Signature-256", &forged)], body.as_bytes()));
    let tampered = body.replace("half", "nothing");
    let signed = format!("sha256={}", hmac_sha256_hex("app-secret", body.as_bytes()));
    assert_unauthorized(webhook(&account, "http://x", &[("X-Hub-Signature-256", &signed)], tampered.as_bytes()));
}

#[test]
fn works_when_meta_verifies_the_webhook_url() {
    let mut account = whatsapp("http://unused").account;
    account.secrets.insert("verify_token".into(), "my-verify-token".into());
    let provider = providers::provider(IntegrationKind::WhatsappMeta).expect("provider");
    let query = |token: &str| {
        vec![
            ("hub.mode".to_owned(), "subscribe".to_owned()),
            ("hub.verify_token".to_owned(), token.to_owned()),
            ("hub.challenge".to_owned(), "1158201444".to_owned()),
        ]
    };
    assert_eq!(provider.handshake(&account, &query("my-verify-token")), Some(Ok("1158201444".into())));
    assert!(matches!(provider.handshake(&account, &query("wrong")), Some(Err(WebhookError::Unauthorized(_)))));
}

// --------------------------------------------------------------- MessageBird

fn messagebird(base: &str, channel: Channel) -> Delivery {
    let account = account(
        IntegrationKind::MessageBird,
        base,
        json!({"workspace_id": "ws-1", "channel_id": "ch-9"}),
        json!({"access_key": "mb-key", "signing_key": "mb-signing"}),
    );
    let mut send = Delivery::new(account, channel);
    if channel == Channel::MessageBirdWhatsapp {
        send.stage.project_id = Some("proj-7".into());
        send.stage.version = Some("ver-3".into());
        send.stage.start_state = Some("greet".into());
        send.variables = map(json!({"name": "Ana"}));
    }
    send
}

#[tokio::test]
async fn works_when_messagebird_sends_a_template_then_text() {
    let fake = FakeProvider::answering(202, json!({"id": "msg-1", "channelId": "ch-9", "status": "accepted"})).await;
    let delivered = messagebird(&fake.base, Channel::MessageBirdWhatsapp).deliver().await.expect("delivered");
    assert_eq!(delivered, Delivered { provider_ref: "msg-1".into(), address: "+15551230000".into() });
    messagebird(&fake.base, Channel::MessageBirdWebhook).deliver().await.expect("delivered");
    let requests = fake.requests();
    for request in &requests {
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/workspaces/ws-1/channels/ch-9/messages"));
        assert_eq!(request.header("authorization"), Some("AccessKey mb-key"));
        assert_eq!(request.header("idempotency-key"), Some("com_42"));
    }
    let receiver = json!({"contacts": [{"identifierKey": "phonenumber", "identifierValue": "+15551230000"}]});
    assert_eq!(
        requests[0].json(),
        json!({"receiver": receiver, "reference": "com_42", "template": {"projectId": "proj-7", "version": "ver-3", "locale": "en",
            "parameters": [{"type": "string", "key": "name", "value": "Ana"}, {"type": "string", "key": "start_state", "value": "greet"}]}})
    );
    assert_eq!(
        requests[1].json(),
        json!({"receiver": receiver, "reference": "com_42", "body": {"type": "text", "text": {"text": "Hello Ana, your payment is due."}}})
    );
}

#[tokio::test]
async fn errors_when_messagebird_refuses_or_is_down() {
    let refused = FakeProvider::answering(422, json!({"code": "InvalidPayload", "message": "receiver is not a valid phone number"})).await;
    assert_rejected(messagebird(&refused.base, Channel::MessageBirdWebhook).deliver().await, "not a valid phone number");
    let down = FakeProvider::answering(500, json!({"code": "InternalError", "message": "oops"})).await;
    assert_unavailable(messagebird(&down.base, Channel::MessageBirdWebhook).deliver().await);
    let mut missing = messagebird(&down.base, Channel::MessageBirdWhatsapp);
    missing.stage.version = None;
    assert!(matches!(missing.deliver().await, Err(ProviderError::Misconfigured(_))));
}

fn bird_payload() -> String {
    json!({"service": "channels", "event": "whatsapp.inbound", "payload": {
        "id": "in-77", "channelId": "ch-9", "direction": "incoming", "status": "delivered",
        "sender": {"contact": {"id": "c-1", "identifierKey": "phonenumber", "identifierValue": "+15551230000"}},
        "body": {"type": "text", "text": {"text": "Who is this?"}}
    }})
    .to_string()
}

#[test]
fn works_when_a_messagebird_webhook_is_signed_with_the_signing_key() {
    let account = messagebird("http://unused", Channel::MessageBirdWebhook).account;
    let url = "https://stratagem.example.com/webhooks/int_test1";
    let body = bird_payload();
    let signature = bird_signature("mb-signing", "1719823259", url, body.as_bytes());
    let headers = [("messagebird-signature", signature.as_str()), ("messagebird-request-timestamp", "1719823259")];
    assert_eq!(
        webhook(&account, url, &headers, body.as_bytes()),
        Ok(vec![InboundEvent::Message { address: "+15551230000".into(), text: "Who is this?".into(), provider_message_id: "in-77".into() }])
    );
    let status = json!({"service": "channels", "event": "whatsapp.outbound", "payload": {
        "id": "msg-1", "direction": "outgoing", "status": "delivered", "reference": "com_42"}})
    .to_string();
    let signature = bird_signature("mb-signing", "1719823260", url, status.as_bytes());
    let headers = [("messagebird-signature", signature.as_str()), ("messagebird-request-timestamp", "1719823260")];
    assert_eq!(
        webhook(&account, url, &headers, status.as_bytes()),
        Ok(vec![InboundEvent::Status { provider_ref: "msg-1".into(), outcome: CallOutcome::Delivered }])
    );
}

#[test]
fn errors_when_a_messagebird_webhook_is_unsigned_or_forged() {
    let account = messagebird("http://unused", Channel::MessageBirdWebhook).account;
    let url = "https://stratagem.example.com/webhooks/int_test1";
    let body = bird_payload();
    assert_unauthorized(webhook(&account, url, &[], body.as_bytes()));
    let forged = bird_signature("guessed", "1719823259", url, body.as_bytes());
    assert_unauthorized(webhook(&account, url, &[("messagebird-signature", &forged), ("messagebird-request-timestamp", "1719823259")], body.as_bytes()));
    // Signed for another URL: replayed against this one.
    let elsewhere = bird_signature("mb-signing", "1719823259", "https://evil.example.com/hook", body.as_bytes());
    assert_unauthorized(webhook(&account, url, &[("messagebird-signature", &elsewhere), ("messagebird-request-timestamp", "1719823259")], body.as_bytes()));
}

// ------------------------------------------------------------------- Infobip

fn infobip(base: &str, channel: Option<&str>) -> Delivery {
    let mut settings = json!({"sender": "InfoSMS"});
    if let Some(channel) = channel {
        settings["channel"] = channel.into();
    }
    let account = account(IntegrationKind::Infobip, base, settings, json!({"api_key": "ib-key", "webhook_secret": "ib-secret"}));
    Delivery::new(account, Channel::Infobip)
}

#[tokio::test]
async fn works_when_infobip_sends_an_sms_with_a_delivery_report_url() {
    let fake = FakeProvider::answering(
        200,
        json!({"bulkId": "com_42", "messages": [{"to": "15551230000", "status": {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED"}, "messageId": "com_42"}]}),
    )
    .await;
    let delivered = infobip(&fake.base, None).deliver().await.expect("delivered");
    assert_eq!(delivered, Delivered { provider_ref: "com_42".into(), address: "15551230000".into() });
    let request = fake.only_request();
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/sms/2/text/advanced"));
    assert_eq!(request.header("authorization"), Some("App ib-key"));
    let notify = format!("{}?secret=ib-secret", webhook_url("int_test1"));
    assert_eq!(
        request.json(),
        json!({"bulkId": "com_42", "messages": [{
            "destinations": [{"to": "15551230000", "messageId": "com_42"}],
            "from": "InfoSMS", "text": "Hello Ana, your payment is due.", "callbackData": "com_42",
            "notifyUrl": notify, "notifyContentType": "application/json"
        }]})
    );
}

#[tokio::test]
async fn works_when_infobip_sends_whatsapp_text() {
    let fake = FakeProvider::answering(
        200,
        json!({"to": "15551230000", "messageCount": 1, "messageId": "com_42", "status": {"groupId": 1, "groupName": "PENDING"}}),
    )
    .await;
    infobip(&fake.base, Some("WHATSAPP")).deliver().await.expect("delivered");
    let request = fake.only_request();
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/whatsapp/1/message/text"));
    assert_eq!(request.header("authorization"), Some("App ib-key"));
    assert_eq!(
        request.json(),
        json!({"from": "InfoSMS", "to": "15551230000", "messageId": "com_42", "content": {"text": "Hello Ana, your payment is due."},
               "callbackData": "com_42", "notifyUrl": format!("{}?secret=ib-secret", webhook_url("int_test1"))})
    );
}

#[tokio::test]
async fn errors_when_infobip_refuses_or_is_down() {
    let refused = FakeProvider::answering(
        401,
        json!({"requestError": {"serviceException": {"messageId": "UNAUTHORIZED", "text": "Invalid login details"}}}),
    )
    .await;
    assert_rejected(infobip(&refused.base, None).deliver().await, "Invalid login details");
    let rejected = FakeProvider::answering(
        200,
        json!({"messages": [{"to": "1", "messageId": "x", "status": {"groupId": 5, "groupName": "REJECTED", "description": "Destination not registered"}}]}),
    )
    .await;
    assert_rejected(infobip(&rejected.base, None).deliver().await, "Destination not registered");
    let down = FakeProvider::answering(500, json!({})).await;
    assert_unavailable(infobip(&down.base, None).deliver().await);
}

#[test]
fn works_when_an_infobip_webhook_brings_its_secret() {
    let account = infobip("http://unused", None).account;
    let body = json!({"results": [
        {"messageId": "in-1", "from": "15551230000", "to": "InfoSMS", "text": "Call me later", "cleanText": "Call me later", "receivedAt": "2024-01-01T10:00:00.000+0000"},
        {"bulkId": "com_42", "messageId": "com_42", "to": "15551230000", "status": {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET"}},
        {"messageId": "com_43", "to": "15551230000", "status": {"groupId": 2, "groupName": "UNDELIVERABLE", "description": "Message sent not delivered"}}
    ], "messageCount": 3, "pendingMessageCount": 0})
    .to_string();
    let expected = vec![
        InboundEvent::Message { address: "15551230000".into(), text: "Call me later".into(), provider_message_id: "in-1".into() },
        InboundEvent::Status { provider_ref: "com_42".into(), outcome: CallOutcome::Delivered },
        InboundEvent::Status { provider_ref: "com_43".into(), outcome: CallOutcome::Failed("Message sent not delivered".into()) },
    ];
    assert_eq!(webhook(&account, "https://s.example.com/webhooks/int_test1?secret=ib-secret", &[], body.as_bytes()), Ok(expected.clone()));
    assert_eq!(webhook(&account, "https://s.example.com/webhooks/int_test1", &[("X-Webhook-Secret", "ib-secret")], body.as_bytes()), Ok(expected));
}

#[test]
fn errors_when_an_infobip_webhook_lacks_or_forges_its_secret() {
    let account = infobip("http://unused", None).account;
    let body = br#"{"results": []}"#;
    assert_unauthorized(webhook(&account, "https://s.example.com/webhooks/int_test1", &[], body));
    assert_unauthorized(webhook(&account, "https://s.example.com/webhooks/int_test1?secret=guess", &[], body));
    let unset = Account { secrets: map(json!({"api_key": "k"})), ..account };
    assert_unauthorized(webhook(&unset, "https://s.example.com/webhooks/int_test1?secret=", &[], body));
}

// -------------------------------------------------------------------- Twilio

fn twilio(base: &str) -> Delivery {
    let account = account(
        IntegrationKind::Twilio,
        base,
        json!({"account_sid": "AC0123456789abcdef", "from_number": "+15550009999"}),
        json!({"auth_token": "tw-token"}),
    );
    let mut send = Delivery::new(account, Channel::Twilio);
    send.stage.start_state = Some("greet".into());
    send
}

#[tokio::test]
async fn works_when_twilio_places_a_call_and_speaks_on_it() {
    let fake = FakeProvider::answering(201, json!({"sid": "CA42", "status": "queued", "to": "+15551230000"})).await;
    let mut send = twilio(&fake.base);
    let delivered = send.deliver().await.expect("call placed");
    assert_eq!(delivered, Delivered { provider_ref: "CA42".into(), address: "CA42".into() });
    send.address = Some("CA42".into());
    send.deliver().await.expect("reply spoken");
    let requests = fake.requests();
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("AC0123456789abcdef:tw-token"));
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.header("authorization"), Some(basic.as_str()));
        assert_eq!(request.header("i-twilio-idempotency-token"), Some("com_42"));
        assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
    }
    assert_eq!(requests[0].path, "/2010-04-01/Accounts/AC0123456789abcdef/Calls.json");
    assert_eq!(requests[1].path, "/2010-04-01/Accounts/AC0123456789abcdef/Calls/CA42.json");
    let callback = webhook_url("int_test1");
    let twiml = format!(
        "<Response><Gather input=\"speech\" speechTimeout=\"auto\" method=\"POST\" action=\"{callback}?turn=com_42\"><Say>Hello Ana, your payment is due.</Say></Gather></Response>"
    );
    let pairs = |list: &[(&str, &str)]| list.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect::<Vec<_>>();
    assert_eq!(
        requests[0].form(),
        pairs(&[
            ("To", "+15551230000"),
            ("From", "+15550009999"),
            ("Twiml", &twiml),
            ("StatusCallback", &callback),
            ("StatusCallbackEvent", "completed"),
            ("StatusCallbackMethod", "POST"),
        ])
    );
    assert_eq!(requests[1].form(), pairs(&[("Twiml", &twiml)]));
}

#[tokio::test]
async fn errors_when_twilio_refuses_or_is_down() {
    let refused = FakeProvider::answering(
        400,
        json!({"code": 21211, "message": "The 'To' number +1555 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}),
    )
    .await;
    assert_rejected(twilio(&refused.base).deliver().await, "is not a valid phone number");
    let down = FakeProvider::answering(503, json!({"code": 20503, "message": "Service unavailable", "status": 503})).await;
    assert_unavailable(twilio(&down.base).deliver().await);
}

fn form(pairs: &[(&str, &str)]) -> (Vec<(String, String)>, String) {
    let params: Vec<(String, String)> = pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
    (params, body)
}

#[test]
fn works_when_twilio_callbacks_are_signed_with_the_auth_token() {
    let account = twilio("http://unused").account;
    let url = "https://stratagem.example.com/webhooks/int_test1?turn=com_42";
    let (params, body) = form(&[("CallSid", "CA42"), ("AccountSid", "AC0123456789abcdef"), ("CallStatus", "in-progress"), ("SpeechResult", "I can pay next week"), ("Confidence", "0.9")]);
    let signature = twilio_signature("tw-token", url, &params);
    assert_eq!(
        webhook(&account, url, &[("X-Twilio-Signature", &signature)], body.as_bytes()),
        Ok(vec![InboundEvent::Message { address: "CA42".into(), text: "I can pay next week".into(), provider_message_id: "CA42:com_42".into() }])
    );
    let url = "https://stratagem.example.com/webhooks/int_test1";
    for (status, outcome) in [
        ("completed", CallOutcome::Answered),
        ("busy", CallOutcome::Busy),
        ("no-answer", CallOutcome::NoAnswer),
        ("failed", CallOutcome::Failed("failed".into())),
        ("canceled", CallOutcome::Failed("canceled".into())),
    ] {
        let (params, body) = form(&[("CallSid", "CA42"), ("CallStatus", status), ("CallDuration", "31")]);
        let signature = twilio_signature("tw-token", url, &params);
        assert_eq!(
            webhook(&account, url, &[("X-Twilio-Signature", &signature)], body.as_bytes()),
            Ok(vec![InboundEvent::Status { provider_ref: "CA42".into(), outcome }]),
            "{status}"
        );
    }
}

#[test]
fn errors_when_a_twilio_callback_is_unsigned_or_forged() {
    let account = twilio("http://unused").account;
    let url = "https://stratagem.example.com/webhooks/int_test1";
    let (params, body) = form(&[("CallSid", "CA42"), ("CallStatus", "completed")]);
    assert_unauthorized(webhook(&account, url, &[], body.as_bytes()));
    let forged = twilio_signature("guessed", url, &params);
    assert_unauthorized(webhook(&account, url, &[("X-Twilio-Signature", &forged)], body.as_bytes()));
    // Signed for another URL (Twilio signs the URL it called).
    let elsewhere = twilio_signature("tw-token", "https://evil.example.com/hook", &params);
    assert_unauthorized(webhook(&account, url, &[("X-Twilio-Signature", &elsewhere)], body.as_bytes()));
}

// ----------------------------------------------------------------------- SIP

fn sip(base: &str) -> Delivery {
    let account = account(
        IntegrationKind::Sip,
        base,
        json!({"caller_id": "+15550001111", "trunk": "pstn-eu"}),
        json!({"api_key": "sip-key"}),
    );
    Delivery::new(account, Channel::Sip)
}

#[tokio::test]
async fn works_when_the_sip_gateway_places_a_call_and_speaks_on_it() {
    let fake = FakeProvider::answering(201, json!({"call_id": "call-5"})).await;
    let mut send = sip(&fake.base);
    assert_eq!(send.deliver().await, Ok(Delivered { provider_ref: "call-5".into(), address: "call-5".into() }));
    send.address = Some("call-5".into());
    send.deliver().await.expect("spoken");
    let requests = fake.requests();
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.header("authorization"), Some("Bearer sip-key"));
        assert_eq!(request.header("idempotency-key"), Some("com_42"));
    }
    assert_eq!(requests[0].path, "/calls");
    assert_eq!(
        requests[0].json(),
        json!({"to": "+15551230000", "from": "+15550001111", "trunk": "pstn-eu", "idempotency_key": "com_42",
               "start_phrase": "Hello Ana, your payment is due.", "callback_url": webhook_url("int_test1")})
    );
    assert_eq!(requests[1].path, "/calls/call-5/say");
    assert_eq!(requests[1].json(), json!({"text": "Hello Ana, your payment is due.", "idempotency_key": "com_42"}));
}

#[tokio::test]
async fn errors_when_the_sip_gateway_refuses_or_is_down() {
    let refused = FakeProvider::answering(403, json!({"message": "trunk pstn-eu does not allow this destination"})).await;
    assert_rejected(sip(&refused.base).deliver().await, "does not allow this destination");
    let down = FakeProvider::answering(502, json!({"message": "bad gateway"})).await;
    assert_unavailable(sip(&down.base).deliver().await);
}

#[test]
fn works_when_sip_callbacks_are_signed_with_the_api_key() {
    let account = sip("http://unused").account;
    let speech = json!({"event": "speech", "call_id": "call-5", "utterance_id": "u1", "text": "Who is calling?"}).to_string();
    let signature = format!("sha256={}", hmac_sha256_hex("sip-key", speech.as_bytes()));
    assert_eq!(
        webhook(&account, "http://x", &[("X-Stratagem-Signature", &signature)], speech.as_bytes()),
        Ok(vec![InboundEvent::Message { address: "call-5".into(), text: "Who is calling?".into(), provider_message_id: "call-5:u1".into() }])
    );
    let status = json!({"event": "status", "call_id": "call-5", "status": "no_answer"}).to_string();
    let signature = format!("sha256={}", hmac_sha256_hex("sip-key", status.as_bytes()));
    assert_eq!(
        webhook(&account, "http://x", &[("X-Stratagem-Signature", &signature)], status.as_bytes()),
        Ok(vec![InboundEvent::Status { provider_ref: "call-5".into(), outcome: CallOutcome::NoAnswer }])
    );
}

#[test]
fn errors_when_a_sip_callback_is_unsigned_or_forged() {
    let account = sip("http://unused").account;
    let body = json!({"event": "status", "call_id": "call-5", "status": "completed"}).to_string();
    assert_unauthorized(webhook(&account, "http://x", &[], body.as_bytes()));
    let forged = format!("sha256={}", hmac_sha256_hex("guess", body.as_bytes()));
    assert_unauthorized(webhook(&account, "http://x", &[("X-Stratagem-Signature", &forged)], body.as_bytes()));
    assert_unauthorized(webhook(&account, "http://x", &[("X-Stratagem-Signature", "sha256=zz")], body.as_bytes()));
}

// ----------------------------------------------------------------------- FCM

/// A key made for this test only (`openssl genpkey -algorithm RSA`); it
/// signs nothing anywhere else.
const TEST_PRIVATE_KEY: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCSsidsVWCyrML3
sB06FnLAeKv0i12PRaADJdht5eV2i4vvQmuVVUmAD68YZzE0mLUPYJtvahVQNSK5
dKSkooaVWyVghR2QO8//Wh9B8cmgEcANgm1hXRyFxAtQbugT5Oejb8NNmoQTMbSw
yr73M51dnHBQbfRdpxUNmRnUw30VSZOcOT5xtwB034ahgoWMsXq33UBdesZBLKkk
xB75ZQ4MrIGDDxgMuN5iWQ6YDHXVlaxBxHk9RE/3nN+mVfCvfpLwqJhIKbh2NYSE
IDRYyzVNckw+YFj1oC6+P1bxuccOEWpWTywDgvtq+Wp+hGO/CtmDWM4Nt8KvGdz8
VQteqBjPAgMBAAECggEAEW77sWu6GLHgX8g9yPP3Ajm1EdRoM4kuOYGLZZAfQ4XV
BQOrPm2K1R3IDMnitqH5TpEIF+cPDl+qN0kN8gTgoqpY2E4pk8UP9IRU16Tw9cV2
QgTAlAQZSipgv9fWW9rlzm4PU08sKA3Nr/8AT+eB6aiYTm6qzmB3Z4zM3ZS37koI
oacnldDo3SYoOt1s4s5TDhEqbSkAIZTDO8xsjm3Ey1UMm3wwJDt6OyP7IiMMinrK
hWUjNyePSEtgr0F34ojCMTkSv4oUcLmk37qGi14CKzSiG/bci4IGhUaTEBL2WRfu
y1W5oq7dXleeO0Y+7CRzaHl1cAO5BQsQ1QX1P2tvNQKBgQDCgC5JE6P5IL3KAVv/
BBNP6escQazVkeJOr7gwooyE0QR6TAOQR6/ATvotFebmkqAWyeNz/Fy8m44BS3dJ
CQkfEFci6yHME9magnEJs5KMydYPRHUjiINLt9o5X5xXn4CAO/0cMpUaRUlxvUYx
nCEjh0K1QUUXx4K+7MhWaCaGdQKBgQDBFGyatz9+k0nwhmR94ateYSRuSH4CewhC
iwOrUwGELzAO9FxRcJuVNJPn7i5YoePzGxnhVab9e1xKyQqhAregeuRqpPho7mDK
uDFJLyd7qEg7LoKWIYt1BOFAIKq5obvciRrTkgBmQn9bJtNEQDhEHNQERdgd1rWT
Gq7ERHchswKBgQC+0hUW+t7vpxCsZAMGwc/UolFZCpHvgk2+FyWlCYTFNW+oMHV6
kuo5yQInQ4qigg3v7ahqfZfaLt72JDzmeafqQxTKHFevKXZe4UTXWMcZu1d46Rfn
gaIWokzF5yiyyri+lpwvkuy3tmxk22ZHe78DZUusGloYB1Qdzp6KL2pElQKBgAlI
gRxDOUNNs51j6MsAoautAgJna9+UqMYCRw/issz3M9lUOGgWAPUAjSf2lLXgOsSC
hhEGfDvtxXc3CVLKfaeyoO7btbHd3DuC9aOuJ7jTU32887xiKoFa1bWunGbGdvDY
irinaWuBQPxR9pBuggYMWMlHzmdI3nwPKV34aL3vAoGASsLojzsRK8zk8PhZ3kZH
P9eNuZW+1kbHqjxXXga47pg1uA/FEi3iFdiS35F1g5KyaDVAuQWNjZ+gxjsiHAZx
1Z8SdhpuNfLm76e3aQPaJNUJOYxEjNUl31NA/RaQonCwM2cuuMVpKDBqEveTGNZ4
SFZObbaiZcQsC+HUOU2hbhk=
-----END PRIVATE KEY-----
";

fn fcm(base: &str, client_email: &str) -> Delivery {
    let service_account = json!({
        "type": "service_account", "project_id": "demo-push", "private_key_id": "k1",
        "private_key": TEST_PRIVATE_KEY, "client_email": client_email,
        "token_uri": format!("{base}/token"),
    });
    let account = account(
        IntegrationKind::Fcm,
        base,
        json!({"project_id": "demo-push"}),
        json!({"service_account_json": service_account.to_string()}),
    );
    let mut send = Delivery::new(account, Channel::MobilePush);
    send.contact = contact(json!({"fcm_token": "device-token-1"}));
    send
}

/// Checks an RS256 JWT against the test key's public half.
fn verify_assertion(jwt: &str) -> Value {
    let body: String = TEST_PRIVATE_KEY.lines().filter(|line| !line.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body).expect("pem");
    let key = ring::signature::RsaKeyPair::from_pkcs8(&der).expect("key");
    let (signed, signature) = jwt.rsplit_once('.').expect("three parts");
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature).expect("signature");
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, key.public().as_ref())
        .verify(signed.as_bytes(), &signature)
        .expect("signed with the service account's key");
    let (header, claims) = signed.split_once('.').expect("header and claims");
    let decode = |part: &str| serde_json::from_slice::<Value>(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("b64")).expect("json");
    assert_eq!(decode(header), json!({"alg": "RS256", "typ": "JWT"}));
    decode(claims)
}

async fn fake_fcm(send_status: u16, send_answer: Value) -> FakeProvider {
    FakeProvider::start(move |seen| {
        if seen.path == "/token" {
            (200, json!({"access_token": "ya29.test-token", "expires_in": 3599, "token_type": "Bearer"}))
        } else {
            (send_status, send_answer.clone())
        }
    })
    .await
}

#[tokio::test]
async fn works_when_fcm_sends_with_a_cached_service_account_token() {
    let fake = fake_fcm(200, json!({"name": "projects/demo-push/messages/0:1700000000%abc"})).await;
    let send = fcm(&fake.base, "pusher-cached@demo-push.iam.gserviceaccount.com");
    let delivered = send.deliver().await.expect("delivered");
    assert_eq!(delivered, Delivered { provider_ref: "projects/demo-push/messages/0:1700000000%abc".into(), address: "device-token-1".into() });
    send.deliver().await.expect("delivered again");
    let requests = fake.requests();
    let paths: Vec<&str> = requests.iter().map(|request| request.path.as_str()).collect();
    assert_eq!(paths, ["/token", "/v1/projects/demo-push/messages:send", "/v1/projects/demo-push/messages:send"], "one token for both sends");
    let token = &requests[0];
    assert_eq!(token.method, "POST");
    let form = token.form();
    assert_eq!(form[0], ("grant_type".to_owned(), "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned()));
    assert_eq!(form[1].0, "assertion");
    let claims = verify_assertion(&form[1].1);
    assert_eq!(claims["iss"], "pusher-cached@demo-push.iam.gserviceaccount.com");
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/firebase.messaging");
    assert_eq!(claims["aud"], format!("{}/token", fake.base));
    assert_eq!(claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat"), 3600);
    let message = &requests[1];
    assert_eq!(message.method, "POST");
    assert_eq!(message.header("authorization"), Some("Bearer ya29.test-token"));
    assert_eq!(
        message.json(),
        json!({"message": {"token": "device-token-1", "notification": {"body": "Hello Ana, your payment is due."}, "data": {"stratagem_key": "com_42"}}})
    );
}

#[tokio::test]
async fn errors_when_fcm_refuses_or_is_down() {
    let refused = fake_fcm(
        404,
        json!({"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND", "details": [{"errorCode": "UNREGISTERED"}]}}),
    )
    .await;
    assert_rejected(fcm(&refused.base, "pusher-refused@demo-push.iam.gserviceaccount.com").deliver().await, "Requested entity was not found");
    let down = fake_fcm(503, json!({"error": {"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE"}})).await;
    assert_unavailable(fcm(&down.base, "pusher-down@demo-push.iam.gserviceaccount.com").deliver().await);
    let mut no_device = fcm(&down.base, "pusher-down@demo-push.iam.gserviceaccount.com");
    no_device.contact = contact(json!({}));
    match no_device.deliver().await {
        Err(ProviderError::Misconfigured(message)) => assert!(message.contains("fcm_token"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors_when_anything_posts_to_an_fcm_integration() {
    let account = fcm("http://unused", "x@demo-push.iam.gserviceaccount.com").account;
    assert_unauthorized(webhook(&account, "http://x", &[], b"{}"));
}
