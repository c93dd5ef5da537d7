//! WhatsApp Business through Meta's Cloud API:
//! `POST {base}/v21.0/{phone_number_id}/messages` with the bearer
//! `access_token`. WhatsApp lets a business open a conversation only with
//! an approved template, so the first message is the stage's
//! `template_name` (language: the integration's `template_language`,
//! default `en`), its named body variables from the communication's
//! `template_variables`; replies inside the 24-hour window are text messages to
//! the contact's WhatsApp id.
//!
//! The Cloud API takes no idempotency key. The key travels as
//! `biz_opaque_callback_data`, which Meta echoes in the message's status
//! webhooks, so a status can be traced to its communication.
//!
//! Webhooks carry `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app
//! secret, raw body)>`. Messages (`entry[].changes[].value.messages[]`)
//! become [`InboundEvent::Message`] from the sender's WhatsApp id (the
//! number in E.164 without `+`, which is also the address a send returns);
//! final statuses (`delivered`, `failed`) become [`InboundEvent::Status`].
//! The GET handshake Meta sends when the URL is registered is answered
//! when `hub.verify_token` equals the integration's `verify_token` secret
//! (the value the admin typed into Meta's webhook form).

use serde_json::{json, Value};
use stratagem_domain::Channel;

use super::{
    answer_field, base_url, contact_phone, json_body, required_secret, required_setting, same, send, verify_sha256_header,
    Account, CallOutcome, DeliverFuture, Delivered, InboundEvent, Outbound, Provider, ProviderError, WebhookError,
    WebhookRequest,
};

const NAME: &str = "WhatsApp (Meta)";
const API_VERSION: &str = "v21.0";

pub struct WhatsappMeta;

impl Provider for WhatsappMeta {
    /// It takes no idempotency key: a send whose outcome is unknown ends
    /// IN_DOUBT rather than writing to the contact twice.
    fn resends_by_key(&self) -> bool {
        false
    }

    fn deliver<'a>(&'a self, http: &'a reqwest::Client, outbound: &'a Outbound<'a>) -> DeliverFuture<'a> {
        Box::pin(async move {
            let account = outbound.account;
            let token = required_secret(account, "access_token")?;
            let phone_number_id = required_setting(account, "phone_number_id")?;
            let to = contact_phone(outbound)?;
            let mut body = if outbound.address.is_some() {
                json!({
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": to,
                    "type": "text",
                    "text": { "body": outbound.text },
                })
            } else {
                let template = outbound.stage.template_name.as_deref().filter(|name| !name.trim().is_empty()).ok_or_else(|| {
                    ProviderError::Misconfigured(format!(
                        "a {} stage opens the conversation with an approved template: set settings.template_name on the stage",
                        Channel::Whatsapp.as_str()
                    ))
                })?;
                let mut body = json!({
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": to,
                    "type": "template",
                    "template": { "name": template, "language": { "code": account.setting("template_language").unwrap_or("en") } },
                });
                // Named body parameters: the template's {{variable}}s.
                if !outbound.variables.is_empty() {
                    let parameters: Vec<Value> = outbound
                        .variables
                        .iter()
                        .map(|(name, value)| json!({"type": "text", "parameter_name": name, "text": super::variable_text(value)}))
                        .collect();
                    body["template"]["components"] = json!([{"type": "body", "parameters": parameters}]);
                }
                body
            };
            body["biz_opaque_callback_data"] = Value::from(outbound.idempotency_key);
            let url = format!("{}/{API_VERSION}/{phone_number_id}/messages", base_url(account, "https://graph.facebook.com"));
            let answer = send(NAME, http.post(url).bearer_auth(token).json(&body)).await?;
            let provider_ref = answer_field(NAME, &answer, "/messages/0/id")?;
            let address = answer
                .pointer("/contacts/0/wa_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| to.trim_start_matches('+').to_owned());
            Ok(Delivered { provider_ref, address })
        })
    }

    fn receive(&self, account: &Account, request: &WebhookRequest<'_>) -> Result<Vec<InboundEvent>, WebhookError> {
        let secret = super::webhook_secret(account, "app_secret", NAME)?;
        verify_sha256_header(NAME, "X-Hub-Signature-256", request.header("X-Hub-Signature-256"), secret, request.body)?;
        let payload = json_body(NAME, request.body)?;
        if payload.get("object").and_then(Value::as_str) != Some("whatsapp_business_account") {
            return Err(WebhookError::Malformed("a WhatsApp webhook has `object: whatsapp_business_account`".into()));
        }
        let mut events = Vec::new();
        let values = payload
            .get("entry")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|entry| entry.get("changes").and_then(Value::as_array).into_iter().flatten())
            .filter_map(|change| change.get("value"));
        for value in values {
            for message in value.get("messages").and_then(Value::as_array).into_iter().flatten() {
                let (Some(from), Some(id)) = (message.get("from").and_then(Value::as_str), message.get("id").and_then(Value::as_str))
                else {
                    return Err(WebhookError::Malformed("a WhatsApp message has `from` and `id`".into()));
                };
                // Media, locations and reactions have no text to answer.
                let text = message
                    .pointer("/text/body")
                    .or_else(|| message.pointer("/button/text"))
                    .or_else(|| message.pointer("/interactive/button_reply/title"))
                    .and_then(Value::as_str);
                if let Some(text) = text {
                    events.push(InboundEvent::Message { address: from.to_owned(), text: text.to_owned(), provider_message_id: id.to_owned() });
                }
            }
            for status in value.get("statuses").and_then(Value::as_array).into_iter().flatten() {
                let (Some(id), Some(state)) = (status.get("id").and_then(Value::as_str), status.get("status").and_then(Value::as_str))
                else {
                    return Err(WebhookError::Malformed("a WhatsApp status has `id` and `status`".into()));
                };
                // `sent` and `read` are not final for a delivery outcome:
                // `delivered` comes (or came) too.
                let outcome = match state {
                    "delivered" => CallOutcome::Delivered,
                    "failed" => {
                        let error = status.pointer("/errors/0");
                        let reason = error
                            .and_then(|error| error.pointer("/error_data/details").or_else(|| error.get("title")))
                            .and_then(Value::as_str)
                            .unwrap_or("failed");
                        CallOutcome::Failed(reason.to_owned())
                    }
                    _ => continue,
                };
                events.push(InboundEvent::Status { provider_ref: id.to_owned(), outcome });
            }
        }
        Ok(events)
    }

    fn handshake(&self, account: &Account, query: &[(String, String)]) -> Option<Result<String, WebhookError>> {
        let get = |name: &str| query.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
        Some(match (get("hub.mode"), get("hub.verify_token"), get("hub.challenge"), account.secret("verify_token")) {
            (Some("subscribe"), Some(token), Some(challenge), Some(secret)) if same(secret.as_bytes(), token.as_bytes()) => {
                Ok(challenge.to_owned())
            }
            _ => Err(WebhookError::Unauthorized(
                "Meta webhook verification: hub.mode must be subscribe and hub.verify_token the integration's verify_token secret (set secrets.verify_token)".into(),
            )),
        })
    }
}
