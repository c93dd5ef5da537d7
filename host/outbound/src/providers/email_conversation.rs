//! Email Communication: a conversation by email through an SMTP
//! integration. The first message is the stage's template (Default or
//! HTML) for the contact; the agent's replies go to the address the
//! contact wrote from, as `Re:` the stage's subject. Each message's
//! `Message-ID` is `<idempotency key@stratagem>`. SMTP takes no idempotency
//! key, so the opening is announced before it is sent and one whose
//! outcome was lost ends IN_DOUBT instead of going out twice
//! ([`Provider::resends_by_key`]).
//!
//! Replies come back through the inbound-mail hook of the mail service
//! (SendGrid Inbound Parse, Mailgun routes, Postmark inbound, or a small
//! relay), posted to `/webhooks/{integration_id}` as JSON
//! `{"from": "Name <addr>", "text": "…", "message_id": "<…>"}` and signed
//! with the integration's secret `webhook_secret`:
//! `X-Stratagem-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`.
//! Quoted history below the reply (`> …`, `On … wrote:`) is cut off, so
//! the agent reads what the contact wrote this time.

use lettre::message::Mailbox;
use lettre::Message;
use serde_json::Value;
use stratagem_domain::template::{render, render_email};

use crate::smtp::{from_mailbox, smtp_send, stage_email, SmtpFailure};

use super::{
    json_body, verify_sha256_header, webhook_secret, Account, DeliverFuture, Delivered, InboundEvent, Outbound, Provider, ProviderError,
    WebhookError, WebhookRequest,
};

const NAME: &str = "Email";
const SIGNATURE_HEADER: &str = "X-Stratagem-Signature";

pub struct EmailConversation;

impl Provider for EmailConversation {
    fn resends_by_key(&self) -> bool {
        false
    }

    fn deliver<'a>(&'a self, _http: &'a reqwest::Client, outbound: &'a Outbound<'a>) -> DeliverFuture<'a> {
        Box::pin(async move {
            let account = outbound.account;
            let address = outbound.address.unwrap_or(&outbound.contact.email).trim().to_ascii_lowercase();
            let display = outbound.contact.name.replace(['<', '>', '"'], "");
            let to: Mailbox = format!("{display} <{address}>").parse().map_err(|_| ProviderError::Rejected {
                provider: NAME,
                detail: format!("contact {} has no valid email address (`{address}`)", outbound.contact.object_id),
            })?;
            let subject_template = outbound.stage.email_subject.as_deref().unwrap_or_default();
            let message_id = format!("<{}@stratagem>", outbound.idempotency_key);
            let message = match (outbound.address, outbound.stage.email_template.as_deref()) {
                // The first message is the stage's email, as Email
                // Notification sends it (and the stage editor's test email).
                (None, Some(template)) => {
                    let input = outbound.stage.email_input_type.unwrap_or_default();
                    let email = render_email(subject_template, template, input, outbound.contact)
                        .map_err(|(field, error)| ProviderError::Misconfigured(format!("{field}: {error}")))?;
                    stage_email(&account.settings, to, message_id.clone(), email).map_err(ProviderError::Misconfigured)?
                }
                _ => {
                    let subject = render(subject_template, outbound.contact, str::to_owned)
                        .map_err(|error| ProviderError::Misconfigured(format!("email_subject: {error}")))?;
                    let from = from_mailbox(&account.settings).map_err(ProviderError::Misconfigured)?;
                    Message::builder()
                        .message_id(Some(message_id.clone()))
                        .from(from)
                        .to(to)
                        .subject(format!("Re: {}", subject.replace(['\r', '\n'], " ")))
                        .body(outbound.text.to_owned())
                        .map_err(|error| ProviderError::Misconfigured(format!("the message cannot be built: {error}")))?
                }
            };
            smtp_send(&account.settings, &account.secrets, message, outbound.egress).await.map_err(|failure| match failure {
                SmtpFailure::NotSent(detail) => ProviderError::Unavailable { provider: NAME, detail },
                SmtpFailure::InDoubt(detail) => ProviderError::InDoubt { provider: NAME, detail },
            })?;
            Ok(Delivered { provider_ref: message_id, address })
        })
    }

    fn receive(&self, account: &Account, request: &WebhookRequest<'_>) -> Result<Vec<InboundEvent>, WebhookError> {
        let secret = webhook_secret(account, "webhook_secret", NAME)?;
        verify_sha256_header(NAME, SIGNATURE_HEADER, request.header(SIGNATURE_HEADER), secret, request.body)?;
        let mail = json_body(NAME, request.body)?;
        let field = |name: &str| mail.get(name).and_then(Value::as_str).map(str::trim).filter(|text| !text.is_empty());
        let from = field("from").ok_or_else(|| WebhookError::Malformed("inbound email without `from`".into()))?;
        let address = sender_address(from).ok_or_else(|| WebhookError::Malformed(format!("`from` has no email address: {from}")))?;
        let message_id = field("message_id").ok_or_else(|| WebhookError::Malformed("inbound email without `message_id`".into()))?;
        let text = new_text(field("text").unwrap_or_default());
        Ok(vec![InboundEvent::Message { address, text, provider_message_id: message_id.to_owned() }])
    }
}

/// `Name <a@b>` or `a@b`, lowercased.
fn sender_address(from: &str) -> Option<String> {
    let address = match (from.rfind('<'), from.rfind('>')) {
        (Some(start), Some(end)) if start < end => &from[start + 1..end],
        _ => from,
    };
    let address = address.trim().to_ascii_lowercase();
    (address.contains('@') && !address.contains(char::is_whitespace)).then_some(address)
}

/// The reply without the quoted history mail clients append.
fn new_text(text: &str) -> String {
    let mut lines = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('>') || (trimmed.starts_with("On ") && trimmed.ends_with("wrote:")) {
            break;
        }
        lines.push(line);
    }
    lines.join("\n").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_reading_the_sender_and_the_new_text() {
        assert_eq!(sender_address("Paula Payer <Paula@Example.com>").as_deref(), Some("paula@example.com"));
        assert_eq!(sender_address("p@example.com").as_deref(), Some("p@example.com"));
        assert_eq!(sender_address("Paula"), None);
        let reply = "I can pay on Monday.\n\nOn Tue, 3 Mar 2026, Billing wrote:\n> Dear Paula,\n> please pay";
        assert_eq!(new_text(reply), "I can pay on Monday.");
    }

    #[test]
    fn errors_when_an_inbound_email_is_unsigned_or_forged() {
        let account = Account {
            id: "int_1".into(),
            kind: stratagem_domain::IntegrationKind::Smtp,
            settings: Default::default(),
            secrets: [("webhook_secret".to_owned(), Value::from("mail-secret"))].into_iter().collect(),
        };
        let body = br#"{"from": "Paula <p@example.com>", "text": "Monday", "message_id": "<m1@mail>"}"#;
        let signed = format!("sha256={}", hex::encode(super::super::hmac(ring::hmac::HMAC_SHA256, b"mail-secret", body)));
        let url = "http://127.0.0.1/webhooks/int_1";
        let signed_headers = vec![("x-stratagem-signature".to_owned(), signed)];
        let events = EmailConversation.receive(&account, &WebhookRequest { url, headers: &signed_headers, body }).expect("verified");
        assert_eq!(
            events,
            [InboundEvent::Message { address: "p@example.com".into(), text: "Monday".into(), provider_message_id: "<m1@mail>".into() }]
        );
        for headers in [vec![], vec![("x-stratagem-signature".to_owned(), "sha256=00".to_owned())]] {
            let refused = EmailConversation.receive(&account, &WebhookRequest { url, headers: &headers, body });
            assert!(matches!(refused, Err(WebhookError::Unauthorized(_))), "{refused:?}");
        }
    }
}
