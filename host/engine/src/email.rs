//! Email Notification: the stage's template rendered for the contact and
//! sent over SMTP with the stage's SMTP integration. One-way: the session
//! ends at delivery — `DELIVERED` when the server accepted the message,
//! `FAILED` with the server's answer otherwise.
//!
//! SMTP has no idempotency key. A send already recorded is not repeated;
//! a node that dies between the server's acceptance and the record sends
//! again on retry, with the same `Message-ID` (`<communication id@…>`), by
//! which mail clients fold the copies.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use stratagem_domain::template::render_email;
use stratagem_domain::JsonMap;
use stratagem_store::{Store, StoreError};

use crate::channels::{ChannelAdapter, ChannelError, Send, SendFuture, Sent};

pub struct EmailChannel {
    pub store: Store,
}

fn outcome(status: &str, detail: Option<String>) -> JsonMap {
    let mut outcome = JsonMap::new();
    outcome.insert("OutcomeStatus".into(), status.into());
    if let Some(detail) = detail {
        outcome.insert("FailureDetail".into(), detail.into());
    }
    outcome
}

impl EmailChannel {
    async fn deliver(&self, send: &Send<'_>) -> Result<JsonMap, ChannelError> {
        let settings = send.settings;
        let integration_id = settings.integration_id.as_deref().unwrap_or_default();
        let integration = match self.store.integration(send.tenant_id, integration_id).await {
            Ok(integration) => integration,
            Err(StoreError::NotFound(_)) => {
                return Ok(outcome("FAILED", Some(format!("the stage's SMTP integration `{integration_id}` no longer exists"))));
            }
            Err(other) => return Err(other.into()),
        };
        let secrets = self.store.integration_secrets(send.tenant_id, integration_id).await?;
        let email = match render_email(
            settings.email_subject.as_deref().unwrap_or_default(),
            settings.email_template.as_deref().unwrap_or_default(),
            settings.email_input_type.unwrap_or_default(),
            send.contact,
        ) {
            Ok(email) => email,
            Err((field, error)) => return Ok(outcome("FAILED", Some(format!("{field}: {error}")))),
        };
        let from = match from_mailbox(&integration.settings) {
            Ok(from) => from,
            Err(problem) => return Ok(outcome("FAILED", Some(problem))),
        };
        let to: Mailbox = match format!("{} <{}>", send.contact.name.replace(['<', '>', '"'], ""), send.contact.email).parse() {
            Ok(to) => to,
            Err(_) => return Ok(outcome("FAILED", Some(format!("contact {} has no valid email address", send.contact.object_id)))),
        };
        let message = Message::builder()
            .message_id(Some(format!("<{}@stratagem>", send.idempotency_key)))
            .from(from)
            .to(to)
            .subject(email.subject)
            .multipart(MultiPart::alternative_plain_html(email.text, email.html));
        let message = match message {
            Ok(message) => message,
            Err(error) => return Ok(outcome("FAILED", Some(format!("the message cannot be built: {error}")))),
        };
        Ok(match smtp_send(&integration.settings, &secrets, message).await {
            Ok(()) => outcome("DELIVERED", None),
            Err(problem) => outcome("FAILED", Some(problem)),
        })
    }
}

/// The sender of an SMTP integration's mail.
pub(crate) fn from_mailbox(settings: &JsonMap) -> Result<Mailbox, String> {
    let address = settings.get("from_address").and_then(|v| v.as_str()).unwrap_or_default();
    address.parse().map_err(|error| format!("the integration's from_address `{address}`: {error}"))
}

/// Hands `message` to an SMTP integration's server; the error says which
/// server answered what.
pub(crate) async fn smtp_send(settings: &JsonMap, secrets: &JsonMap, message: Message) -> Result<(), String> {
    let text = |map: &JsonMap, key: &str| map.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let host = text(settings, "host");
    let port = settings.get("port").and_then(|v| v.as_u64()).unwrap_or(587) as u16;
    let builder = match settings.get("tls").and_then(|v| v.as_str()).unwrap_or("starttls") {
        "none" => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)),
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&host),
        _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host),
    };
    let mut builder = builder.map_err(|error| format!("SMTP server {host}: {error}"))?.port(port).timeout(Some(Duration::from_secs(30)));
    let username = text(settings, "username");
    if !username.is_empty() {
        builder = builder.credentials(Credentials::new(username, text(secrets, "password")));
    }
    builder.build().send(message).await.map(|_| ()).map_err(|error| format!("SMTP server {host}:{port}: {error}"))
}

impl ChannelAdapter for EmailChannel {
    fn send<'a>(&'a self, send: &'a Send<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            if let Some(recorded) = self.store.recorded_send(send.tenant_id, send.idempotency_key).await? {
                return Ok(Sent::Ended(recorded));
            }
            let outcome = self.deliver(send).await?;
            let channel = send.channel.as_str();
            Ok(Sent::Ended(self.store.record_send(send.tenant_id, send.idempotency_key, channel, &outcome, send.now).await?))
        })
    }
}
