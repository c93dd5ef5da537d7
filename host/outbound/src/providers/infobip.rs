//! Infobip, for the INFOBIP channel (an AI agent that opens with its start
//! phrase and then converses). The integration's `channel` setting says
//! how the text travels:
//!
//! - `SMS` (default): `POST {base}/sms/2/text/advanced` — free text may
//!   open a conversation, so the start phrase goes out as written;
//! - `WHATSAPP`: `POST {base}/whatsapp/1/message/text`, for accounts whose
//!   contacts write first (WhatsApp refuses business-initiated free text).
//!
//! Both with `Authorization: App {api_key}` and the integration's `sender`.
//! Infobip takes no idempotency header; the key is the message's own
//! `messageId` (and `bulkId`/`callbackData`), so a retried send names the
//! same message and delivery reports name it back. Numbers travel as
//! Infobip writes them: international, without `+`.
//!
//! Infobip does not sign webhooks. The integration's `webhook_secret` must
//! come back with each call — as the `secret` query parameter of the URL
//! configured in Infobip (`…/webhooks/{id}?secret=…`) or in the
//! `X-Webhook-Secret` header; delivery reports are requested to that URL
//! with the secret already in it. Without the secret every call is refused.
//! Inbound SMS (`results[].text`) and WhatsApp (`results[].message.text`)
//! become messages; delivery reports (`results[].status.groupName`) become
//! statuses once final.

use serde_json::{json, Value};

use super::{
    answer_field, contact_phone, json_body, query_pairs, required_secret, required_setting, same, send,
    webhook_secret, Account, CallOutcome, DeliverFuture, Delivered, InboundEvent, Outbound, Provider,
    ProviderError, WebhookError, WebhookRequest,
};

const NAME: &str = "Infobip";
const SECRET_HEADER: &str = "X-Webhook-Secret";

pub struct Infobip;

/// Where Infobip posts this integration's delivery reports.
fn notify_url(account: &Account, webhook_url: &str) -> Option<String> {
    let secret = account.secret("webhook_secret")?;
    let query: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("secret", secret).finish();
    Some(format!("{webhook_url}?{query}"))
}

impl Provider for Infobip {
    fn deliver<'a>(&'a self, http: &'a reqwest::Client, outbound: &'a Outbound<'a>) -> DeliverFuture<'a> {
        Box::pin(async move {
            let account = outbound.account;
            let key = required_secret(account, "api_key")?;
            let sender = required_setting(account, "sender")?;
            let base = required_setting(account, "api_base_url")?.trim_end_matches('/');
            let to = contact_phone(outbound)?.trim_start_matches('+').to_owned();
            let notify = notify_url(account, outbound.webhook_url);
            let whatsapp = account.setting("channel") == Some("WHATSAPP");
            let (url, body) = if whatsapp {
                let mut body = json!({
                    "from": sender,
                    "to": to,
                    "messageId": outbound.idempotency_key,
                    "content": { "text": outbound.text },
                    "callbackData": outbound.idempotency_key,
                });
                if let Some(notify) = notify {
                    body["notifyUrl"] = Value::from(notify);
                }
                (format!("{base}/whatsapp/1/message/text"), body)
            } else {
                let mut message = json!({
                    "destinations": [{ "to": to, "messageId": outbound.idempotency_key }],
                    "from": sender,
                    "text": outbound.text,
                    "callbackData": outbound.idempotency_key,
                });
                if let Some(notify) = notify {
                    message["notifyUrl"] = Value::from(notify);
                    message["notifyContentType"] = Value::from("application/json");
                }
                (format!("{base}/sms/2/text/advanced"), json!({ "bulkId": outbound.idempotency_key, "messages": [message] }))
            };
            let request = http.post(url).header(reqwest::header::AUTHORIZATION, format!("App {key}")).json(&body);
            let answer = send(NAME, request).await?;
            let message = if whatsapp { answer.clone() } else { answer.pointer("/messages/0").cloned().unwrap_or(Value::Null) };
            // Infobip answers 200 with a REJECTED status for some refusals.
            if message.pointer("/status/groupName").and_then(Value::as_str) == Some("REJECTED") {
                let detail = message.pointer("/status/description").and_then(Value::as_str).unwrap_or("REJECTED");
                return Err(ProviderError::Rejected { provider: NAME, detail: detail.to_owned() });
            }
            Ok(Delivered { provider_ref: answer_field(NAME, &message, "/messageId")?, address: to })
        })
    }

    fn receive(&self, account: &Account, request: &WebhookRequest<'_>) -> Result<Vec<InboundEvent>, WebhookError> {
        let secret = webhook_secret(account, "webhook_secret", NAME)?;
        let from_query = query_pairs(request.url).into_iter().find(|(name, _)| name == "secret").map(|(_, value)| value);
        let given = request.header(SECRET_HEADER).map(str::to_owned).or(from_query);
        match given {
            Some(given) if same(secret.as_bytes(), given.as_bytes()) => {}
            Some(_) => return Err(WebhookError::Unauthorized("Infobip webhook with a wrong secret".into())),
            None => {
                return Err(WebhookError::Unauthorized(format!(
                    "Infobip webhook without its secret: configure the URL with ?secret=<webhook_secret> or send the {SECRET_HEADER} header"
                )))
            }
        }
        let payload = json_body(NAME, request.body)?;
        let Some(results) = payload.get("results").and_then(Value::as_array) else {
            return Err(WebhookError::Malformed("an Infobip webhook has `results`".into()));
        };
        let mut events = Vec::new();
        for result in results {
            let Some(id) = result.get("messageId").and_then(Value::as_str) else {
                return Err(WebhookError::Malformed("an Infobip result has a `messageId`".into()));
            };
            if let Some(group) = result.pointer("/status/groupName").and_then(Value::as_str) {
                let outcome = match group {
                    "DELIVERED" => CallOutcome::Delivered,
                    "UNDELIVERABLE" | "EXPIRED" | "REJECTED" => {
                        let reason = result.pointer("/status/description").and_then(Value::as_str).unwrap_or(group);
                        CallOutcome::Failed(reason.to_owned())
                    }
                    _ => continue,
                };
                events.push(InboundEvent::Status { provider_ref: id.to_owned(), outcome });
                continue;
            }
            let Some(from) = result.get("from").and_then(Value::as_str) else {
                return Err(WebhookError::Malformed("an inbound Infobip message has `from`".into()));
            };
            let text = result.get("text").or_else(|| result.pointer("/message/text")).and_then(Value::as_str);
            if let Some(text) = text {
                events.push(InboundEvent::Message {
                    address: from.trim_start_matches('+').to_owned(),
                    text: text.to_owned(),
                    provider_message_id: id.to_owned(),
                });
            }
        }
        Ok(events)
    }
}
