//! SIP voice through a call-control HTTP API. SIP itself has no HTTP API
//! and no single vendor's is public for every trunk, so this is the
//! contract a SIP gateway (or a small bridge in front of one: FreeSWITCH,
//! Asterisk ARI, a media server with speech) speaks to Stratagem. All
//! requests carry `Authorization: Bearer {api_key}` and
//! `Idempotency-Key: {key}`; a gateway should treat a repeated key as the
//! same call or utterance. The engine does not count on it — a trunk
//! behind a bridge places a repeated call twice — so a call is announced
//! before it is placed, and one whose outcome was lost ends IN_DOUBT
//! instead of being placed again ([`Provider::resends_by_key`]).
//!
//! Place a call — `POST {api_base_url}/calls`:
//! ```json
//! {"to": "+15551230000", "from": "<caller_id>", "trunk": "<trunk or null>",
//!  "idempotency_key": "com_…", "start_phrase": "what the agent says first",
//!  "callback_url": "https://…/webhooks/<integration id>"}
//! ```
//! answered 2xx `{"call_id": "…"}`.
//!
//! Say something on a live call — `POST {api_base_url}/calls/{call_id}/say`:
//! `{"text": "…", "idempotency_key": "…"}`, answered 2xx `{"call_id": "…"}`.
//!
//! Callbacks — `POST callback_url`, JSON, signed with
//! `X-Stratagem-Signature: sha256=<hex HMAC-SHA256(api_key, raw body)>`:
//! - `{"event": "speech", "call_id": "…", "utterance_id": "…", "text": "…"}`
//!   what the contact said (a message whose address is the call);
//! - `{"event": "status", "call_id": "…", "status": "completed" | "busy" |
//!   "no_answer" | "failed", "reason": "…"}` how the call ended
//!   (`completed` = answered, then hung up). Other statuses are ignored.
//!
//! As with Twilio, a call is its own conversation: its address is its
//! `call_id`.

use serde_json::{json, Value};

use super::{
    answer_field, base_url, contact_phone, json_body, required_secret, required_setting, send, verify_sha256_header,
    webhook_secret, Account, CallOutcome, DeliverFuture, Delivered, InboundEvent, Outbound, Provider,
    WebhookError, WebhookRequest,
};

const NAME: &str = "SIP gateway";
const SIGNATURE_HEADER: &str = "X-Stratagem-Signature";

pub struct Sip;

impl Provider for Sip {
    fn resends_by_key(&self) -> bool {
        false
    }

    fn deliver<'a>(&'a self, http: &'a reqwest::Client, outbound: &'a Outbound<'a>) -> DeliverFuture<'a> {
        Box::pin(async move {
            let account = outbound.account;
            let key = required_secret(account, "api_key")?;
            let base = base_url(account, "");
            if base.is_empty() {
                required_setting(account, "api_base_url")?;
            }
            let (url, body) = match outbound.address.filter(|call| !call.trim().is_empty()) {
                Some(call) => (format!("{base}/calls/{call}/say"), json!({ "text": outbound.text, "idempotency_key": outbound.idempotency_key })),
                None => (
                    format!("{base}/calls"),
                    json!({
                        "to": contact_phone(outbound)?,
                        "from": required_setting(account, "caller_id")?,
                        "trunk": account.setting("trunk"),
                        "idempotency_key": outbound.idempotency_key,
                        "start_phrase": outbound.text,
                        "callback_url": outbound.webhook_url,
                    }),
                ),
            };
            let request = http.post(url).bearer_auth(key).header("Idempotency-Key", outbound.idempotency_key).json(&body);
            let answer = send(NAME, request).await?;
            let call = answer_field(NAME, &answer, "/call_id")?;
            Ok(Delivered { provider_ref: call.clone(), address: call })
        })
    }

    fn receive(&self, account: &Account, request: &WebhookRequest<'_>) -> Result<Vec<InboundEvent>, WebhookError> {
        let key = webhook_secret(account, "api_key", NAME)?;
        verify_sha256_header(NAME, SIGNATURE_HEADER, request.header(SIGNATURE_HEADER), key, request.body)?;
        let event = json_body(NAME, request.body)?;
        let text = |name: &str| event.get(name).and_then(Value::as_str);
        let Some(call) = text("call_id") else {
            return Err(WebhookError::Malformed("a SIP gateway callback has a `call_id`".into()));
        };
        match text("event") {
            Some("speech") => {
                let (Some(utterance), Some(words)) = (text("utterance_id"), text("text")) else {
                    return Err(WebhookError::Malformed("a speech callback has `utterance_id` and `text`".into()));
                };
                Ok(vec![InboundEvent::Message {
                    address: call.to_owned(),
                    text: words.to_owned(),
                    provider_message_id: format!("{call}:{utterance}"),
                }])
            }
            Some("status") => {
                let outcome = match text("status") {
                    Some("completed") => CallOutcome::Answered,
                    Some("busy") => CallOutcome::Busy,
                    Some("no_answer") => CallOutcome::NoAnswer,
                    Some("failed") => CallOutcome::Failed(text("reason").unwrap_or("failed").to_owned()),
                    _ => return Ok(Vec::new()),
                };
                Ok(vec![InboundEvent::Status { provider_ref: call.to_owned(), outcome }])
            }
            _ => Err(WebhookError::Malformed("a SIP gateway callback's `event` is `speech` or `status`".into())),
        }
    }
}
