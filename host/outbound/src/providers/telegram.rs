//! Telegram Bot API: `POST {base}/bot{token}/sendMessage` with `chat_id`
//! and `text`. The chat is the reply address, else the contact's
//! `telegram_chat_id` parameter (a bot cannot write to a phone number; the
//! contact must have started the bot, which is how its chat id is known).
//!
//! Telegram takes no idempotency key: the send is announced before it is
//! made, and one whose outcome is lost ends IN_DOUBT instead of being
//! repeated.
//!
//! Webhooks are `Update` objects. Telegram does not sign them: it echoes
//! the `secret_token` given to `setWebhook` in the
//! `X-Telegram-Bot-Api-Secret-Token` header, which must equal the
//! integration's `webhook_secret`. Without that secret every update is
//! refused. An inbound message's id is `{chat_id}:{message_id}` — the same
//! shape as the `provider_ref` of a sent message, and stable when Telegram
//! redelivers an update.

use serde_json::{json, Value};

use super::{
    answer_field, base_url, json_body, required_secret, same, send, webhook_secret, Account, DeliverFuture, Delivered,
    InboundEvent, Outbound, Provider, ProviderError, WebhookError, WebhookRequest,
};

const NAME: &str = "Telegram";
const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

pub struct Telegram;

fn chat_id<'a>(outbound: &'a Outbound<'a>) -> Result<String, ProviderError> {
    if let Some(address) = outbound.address.filter(|address| !address.trim().is_empty()) {
        return Ok(address.to_owned());
    }
    match outbound.contact.parameters.get("telegram_chat_id") {
        Some(Value::String(id)) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
        Some(Value::Number(id)) => Ok(id.to_string()),
        _ => Err(ProviderError::Misconfigured(format!(
            "contact {} has no Telegram chat: import it with a `telegram_chat_id` column (the chat id of the contact's conversation with the bot)",
            outbound.contact.object_id
        ))),
    }
}

impl Provider for Telegram {
    /// It takes no idempotency key: a send whose outcome is unknown ends
    /// IN_DOUBT rather than writing to the contact twice.
    fn resends_by_key(&self) -> bool {
        false
    }

    fn deliver<'a>(&'a self, http: &'a reqwest::Client, outbound: &'a Outbound<'a>) -> DeliverFuture<'a> {
        Box::pin(async move {
            let token = required_secret(outbound.account, "bot_token")?;
            let chat = chat_id(outbound)?;
            let url = format!("{}/bot{token}/sendMessage", base_url(outbound.account, "https://api.telegram.org"));
            // A numeric chat id goes as a number, as the Bot API documents;
            // `@channelusername` stays text.
            let chat_value = chat.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(chat.clone()));
            let answer = send(NAME, http.post(url).json(&json!({ "chat_id": chat_value, "text": outbound.text }))).await?;
            if answer.get("ok") != Some(&Value::Bool(true)) {
                return Err(ProviderError::Rejected { provider: NAME, detail: super::error_text(&answer.to_string()) });
            }
            let message_id = answer_field(NAME, &answer, "/result/message_id")?;
            Ok(Delivered { provider_ref: format!("{chat}:{message_id}"), address: chat })
        })
    }

    fn receive(&self, account: &Account, request: &WebhookRequest<'_>) -> Result<Vec<InboundEvent>, WebhookError> {
        let secret = webhook_secret(account, "webhook_secret", NAME)?;
        match request.header(SECRET_HEADER) {
            Some(given) if same(secret.as_bytes(), given.as_bytes()) => {}
            Some(_) => return Err(WebhookError::Unauthorized(format!("Telegram webhook with a wrong {SECRET_HEADER}"))),
            None => return Err(WebhookError::Unauthorized(format!("Telegram webhook without the {SECRET_HEADER} header"))),
        }
        let update = json_body(NAME, request.body)?;
        if update.get("update_id").and_then(Value::as_i64).is_none() {
            return Err(WebhookError::Malformed("a Telegram update has an `update_id`".into()));
        }
        // Edited messages, button presses and the like carry no new text.
        let Some(message) = update.get("message") else {
            return Ok(Vec::new());
        };
        let (Some(chat), Some(message_id)) =
            (message.pointer("/chat/id").and_then(Value::as_i64), message.get("message_id").and_then(Value::as_i64))
        else {
            return Err(WebhookError::Malformed("a Telegram message has `chat.id` and `message_id`".into()));
        };
        let Some(text) = message.get("text").and_then(Value::as_str) else {
            return Ok(Vec::new());
        };
        Ok(vec![InboundEvent::Message {
            address: chat.to_string(),
            text: text.to_owned(),
            provider_message_id: format!("{chat}:{message_id}"),
        }])
    }
}
