//! MessageBird (Bird) Channels API, for the MESSAGEBIRD_WHATSAPP and
//! MESSAGEBIRD_WEBHOOK channels:
//! `POST {base}/workspaces/{workspace_id}/channels/{channel_id}/messages`
//! with `Authorization: AccessKey {access_key}`, the receiver as
//! `receiver.contacts[0].identifierValue` (E.164 phone).
//!
//! - MESSAGEBIRD_WHATSAPP opens the conversation with the stage's Studio
//!   template (`template.projectId` = `project_id`, `template.version` =
//!   `version`, `template.locale` = the integration's `template_locale`,
//!   default `en`), as WhatsApp requires of a business-initiated message;
//!   `template.parameters` carry the communication's `template_variables`
//!   and the stage's `start_state` (key `start_state`), where the Studio
//!   flow starts.
//! - MESSAGEBIRD_WEBHOOK, and every reply, send a text body.
//!
//! The idempotency key goes as the message's `reference` (Bird echoes it in
//! the message's webhooks) and as the `Idempotency-Key` header, which Bird's
//! API dedupes POSTs by.
//!
//! Webhooks (`channels` service, `whatsapp.inbound` / `whatsapp.outbound`
//! events) are verified as Bird documents for subscriptions created with a
//! `signingKey`: `messagebird-signature` is base64 of HMAC-SHA256(signing
//! key, `{messagebird-request-timestamp}\n{request URL}\n{SHA-256 of the
//! body, raw bytes}`). Without a `signing_key` on the integration every
//! webhook is refused.

use base64::Engine as _;
use serde_json::{json, Value};
use stratagem_domain::Channel;

use super::{
    answer_field, base_url, contact_phone, json_body, required_secret, required_setting, same, send, webhook_secret,
    Account, CallOutcome, DeliverFuture, Delivered, InboundEvent, Outbound, Provider, ProviderError, WebhookError,
    WebhookRequest,
};

const NAME: &str = "MessageBird";

pub struct MessageBird;

/// Bird's webhook signature, base64: HMAC-SHA256 with the signing key over
/// the timestamp, the URL and the body's SHA-256, joined by newlines.
pub fn bird_signature(signing_key: &str, timestamp: &str, url: &str, body: &[u8]) -> String {
    let mut payload = format!("{timestamp}\n{url}\n").into_bytes();
    payload.extend_from_slice(ring::digest::digest(&ring::digest::SHA256, body).as_ref());
    base64::engine::general_purpose::STANDARD.encode(super::hmac(ring::hmac::HMAC_SHA256, signing_key.as_bytes(), &payload))
}

impl Provider for MessageBird {
    fn deliver<'a>(&'a self, http: &'a reqwest::Client, outbound: &'a Outbound<'a>) -> DeliverFuture<'a> {
        Box::pin(async move {
            let account = outbound.account;
            let key = required_secret(account, "access_key")?;
            let workspace = required_setting(account, "workspace_id")?;
            let channel = required_setting(account, "channel_id")?;
            let to = contact_phone(outbound)?;
            let mut body = json!({
                "receiver": { "contacts": [{ "identifierKey": "phonenumber", "identifierValue": to }] },
                "reference": outbound.idempotency_key,
            });
            if outbound.address.is_none() && outbound.channel == Channel::MessageBirdWhatsapp {
                let stage = outbound.stage;
                let (Some(project), Some(version)) = (stage.project_id.as_deref(), stage.version.as_deref()) else {
                    return Err(ProviderError::Misconfigured(format!(
                        "a {} stage opens the conversation with a template: set settings.project_id and settings.version on the stage",
                        Channel::MessageBirdWhatsapp.as_str()
                    )));
                };
                body["template"] = json!({
                    "projectId": project,
                    "version": version,
                    "locale": account.setting("template_locale").unwrap_or("en"),
                });
                // The template's variables, and the state its flow starts in.
                let mut parameters: Vec<Value> = outbound
                    .variables
                    .iter()
                    .map(|(key, value)| json!({"type": "string", "key": key, "value": super::variable_text(value)}))
                    .collect();
                if let Some(state) = stage.start_state.as_deref().filter(|state| !state.trim().is_empty()) {
                    parameters.push(json!({"type": "string", "key": "start_state", "value": state}));
                }
                if !parameters.is_empty() {
                    body["template"]["parameters"] = Value::Array(parameters);
                }
            } else {
                body["body"] = json!({ "type": "text", "text": { "text": outbound.text } });
            }
            let url = format!("{}/workspaces/{workspace}/channels/{channel}/messages", base_url(account, "https://api.bird.com"));
            let request = http
                .post(url)
                .header(reqwest::header::AUTHORIZATION, format!("AccessKey {key}"))
                .header("Idempotency-Key", outbound.idempotency_key)
                .json(&body);
            let answer = send(NAME, request).await?;
            Ok(Delivered { provider_ref: answer_field(NAME, &answer, "/id")?, address: to.to_owned() })
        })
    }

    fn receive(&self, account: &Account, request: &WebhookRequest<'_>) -> Result<Vec<InboundEvent>, WebhookError> {
        let key = webhook_secret(account, "signing_key", NAME)?;
        let (Some(signature), Some(timestamp)) = (request.header("messagebird-signature"), request.header("messagebird-request-timestamp"))
        else {
            return Err(WebhookError::Unauthorized(
                "MessageBird webhook without the messagebird-signature and messagebird-request-timestamp headers".into(),
            ));
        };
        let expected = bird_signature(key, timestamp, request.url, request.body);
        if !same(expected.as_bytes(), signature.trim().as_bytes()) {
            return Err(WebhookError::Unauthorized("MessageBird webhook with a wrong messagebird-signature".into()));
        }
        let event = json_body(NAME, request.body)?;
        let Some(payload) = event.get("payload") else {
            return Err(WebhookError::Malformed("a Bird webhook has a `payload`".into()));
        };
        let Some(id) = payload.get("id").and_then(Value::as_str) else {
            return Err(WebhookError::Malformed("a Bird message has an `id`".into()));
        };
        match payload.get("direction").and_then(Value::as_str) {
            Some("incoming") => {
                let Some(from) = payload.pointer("/sender/contact/identifierValue").and_then(Value::as_str) else {
                    return Err(WebhookError::Malformed("an incoming Bird message has `sender.contact.identifierValue`".into()));
                };
                let text = payload.pointer("/body/text/text").and_then(Value::as_str);
                Ok(text
                    .map(|text| InboundEvent::Message { address: from.to_owned(), text: text.to_owned(), provider_message_id: id.to_owned() })
                    .into_iter()
                    .collect())
            }
            Some("outgoing") => {
                let outcome = match payload.get("status").and_then(Value::as_str) {
                    Some("delivered") => CallOutcome::Delivered,
                    Some("failed" | "sending_failed" | "delivery_failed" | "rejected") => {
                        let reason = payload.pointer("/reason").and_then(Value::as_str);
                        CallOutcome::Failed(reason.or(payload.get("status").and_then(Value::as_str)).unwrap_or("failed").to_owned())
                    }
                    _ => return Ok(Vec::new()),
                };
                Ok(vec![InboundEvent::Status { provider_ref: id.to_owned(), outcome }])
            }
            _ => Err(WebhookError::Malformed("a Bird message has `direction` incoming or outgoing".into())),
        }
    }
}
