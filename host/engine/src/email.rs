//! Email Notification: the stage's template rendered for the contact and
//! sent over SMTP with the stage's SMTP integration. One-way: the session
//! ends at delivery — `DELIVERED` when the server accepted the message,
//! `FAILED` with the server's answer when it could not be reached or
//! refused it, `IN_DOUBT` when it had the whole message and its answer was
//! lost (it may deliver it).
//!
//! SMTP has no idempotency key. The send is announced, committed, before
//! the connection is opened (`Store::begin_send`), and its outcome recorded
//! after: a send already recorded is not repeated, and one announced with
//! no outcome — its node died between the server's acceptance and the
//! record — is not repeated either: the engine marks it IN_DOUBT. The
//! `Message-ID` is `<communication id@…>`.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::Message;
use stratagem_domain::template::render_email;
use stratagem_domain::JsonMap;
use stratagem_store::{SendClaim, Store, StoreError};

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

/// A message ready to go out through an SMTP integration.
struct Outgoing {
    settings: JsonMap,
    secrets: JsonMap,
    message: Message,
}

impl EmailChannel {
    /// The message for the contact, or the outcome of a send that cannot
    /// be made (`FAILED`, saying why).
    async fn prepare(&self, send: &Send<'_>) -> Result<Result<Outgoing, JsonMap>, ChannelError> {
        let settings = send.settings;
        let integration_id = settings.integration_id.as_deref().unwrap_or_default();
        let integration = match self.store.integration(send.tenant_id, integration_id).await {
            Ok(integration) => integration,
            Err(StoreError::NotFound(_)) => {
                return Ok(Err(outcome("FAILED", Some(format!("the stage's SMTP integration `{integration_id}` no longer exists")))));
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
            Err((field, error)) => return Ok(Err(outcome("FAILED", Some(format!("{field}: {error}"))))),
        };
        let from = match from_mailbox(&integration.settings) {
            Ok(from) => from,
            Err(problem) => return Ok(Err(outcome("FAILED", Some(problem)))),
        };
        let to: Mailbox = match format!("{} <{}>", send.contact.name.replace(['<', '>', '"'], ""), send.contact.email).parse() {
            Ok(to) => to,
            Err(_) => return Ok(Err(outcome("FAILED", Some(format!("contact {} has no valid email address", send.contact.object_id))))),
        };
        let message = Message::builder()
            .message_id(Some(format!("<{}@stratagem>", send.idempotency_key)))
            .from(from)
            .to(to)
            .subject(email.subject)
            .multipart(MultiPart::alternative_plain_html(email.text, email.html));
        Ok(match message {
            Ok(message) => Ok(Outgoing { settings: integration.settings, secrets, message }),
            Err(error) => Err(outcome("FAILED", Some(format!("the message cannot be built: {error}")))),
        })
    }
}

/// The sender of an SMTP integration's mail.
pub(crate) fn from_mailbox(settings: &JsonMap) -> Result<Mailbox, String> {
    let address = settings.get("from_address").and_then(|v| v.as_str()).unwrap_or_default();
    address.parse().map_err(|error| format!("the integration's from_address `{address}`: {error}"))
}

/// How long each half of an SMTP send may take: reaching the server up to
/// its go-ahead for the message, then the message and the server's answer.
/// Both together stay under the engine's default lease (60 s), so a live
/// node records its send before the in-doubt sweep would take it.
const SMTP_PHASE: Duration = Duration::from_secs(25);

/// Why an SMTP send did not end with the server accepting the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SmtpFailure {
    /// Nothing was delivered: the server could not be reached or did not
    /// get as far as taking the message, or it refused it (the text says
    /// which server answered what).
    NotSent(String),
    /// The server had the whole message, then its answer was lost (the
    /// connection broke, or it did not answer in time): it may deliver it.
    InDoubt(String),
}

/// Hands `message` to an SMTP integration's server. The server has the
/// message only once its end has been written; a failure before that
/// reached no one, one after it is in doubt unless the server answered a
/// refusal.
pub(crate) async fn smtp_send(settings: &JsonMap, secrets: &JsonMap, message: Message) -> Result<(), SmtpFailure> {
    let text = |map: &JsonMap, key: &str| map.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let host = text(settings, "host");
    let port = settings.get("port").and_then(|v| v.as_u64()).unwrap_or(587) as u16;
    let server = format!("SMTP server {host}:{port}");
    let tls = settings.get("tls").and_then(|v| v.as_str()).unwrap_or("starttls").to_owned();
    let username = text(settings, "username");
    let envelope = message.envelope().clone();
    let body = message.formatted();
    let hello = ClientId::default();
    // Connect, say hello (TLS and login as the integration says), and get
    // the server's go-ahead for the message: nothing has gone out yet.
    let ready = async {
        let wrapper = match tls.as_str() {
            "tls" => Some(TlsParameters::new(host.clone()).map_err(|e| e.to_string())?),
            _ => None,
        };
        let mut connection = AsyncSmtpConnection::connect_tokio1((host.as_str(), port), Some(SMTP_PHASE), &hello, wrapper, None)
            .await
            .map_err(|e| e.to_string())?;
        if tls != "none" && tls != "tls" {
            let parameters = TlsParameters::new(host.clone()).map_err(|e| e.to_string())?;
            connection.starttls(parameters, &hello).await.map_err(|e| e.to_string())?;
        }
        if !username.is_empty() {
            let credentials = Credentials::new(username.clone(), text(secrets, "password"));
            connection.auth(&[Mechanism::Plain, Mechanism::Login], &credentials).await.map_err(|e| e.to_string())?;
        }
        let mut options = Vec::new();
        if !envelope.to().iter().chain(envelope.from()).all(|address: &lettre::Address| AsRef::<str>::as_ref(address).is_ascii()) {
            if !connection.server_info().supports_feature(Extension::SmtpUtfEight) {
                return Err("the addresses are not ASCII and the server does not support SMTPUTF8".to_owned());
            }
            options.push(MailParameter::SmtpUtfEight);
        }
        if !body.is_ascii() {
            if !connection.server_info().supports_feature(Extension::EightBitMime) {
                return Err("the message is not ASCII and the server does not support 8BITMIME".to_owned());
            }
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        connection.command(Mail::new(envelope.from().cloned(), options)).await.map_err(|e| e.to_string())?;
        for to in envelope.to() {
            connection.command(Rcpt::new(to.clone(), Vec::new())).await.map_err(|e| e.to_string())?;
        }
        connection.command(Data).await.map_err(|e| e.to_string())?;
        Ok(connection)
    };
    let mut connection = match tokio::time::timeout(SMTP_PHASE, ready).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => return Err(SmtpFailure::NotSent(format!("{server}: {error}"))),
        Err(_) => return Err(SmtpFailure::NotSent(format!("{server} did not take the message within {} s", SMTP_PHASE.as_secs()))),
    };
    // From the message's first byte on, the server may have it.
    let sent = match tokio::time::timeout(SMTP_PHASE, connection.message(&body)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) if error.is_transient() || error.is_permanent() => Err(SmtpFailure::NotSent(format!("{server}: {error}"))),
        Ok(Err(error)) => Err(SmtpFailure::InDoubt(format!("{server} had the message, then: {error}"))),
        Err(_) => Err(SmtpFailure::InDoubt(format!("{server} had the message and did not confirm it within {} s", SMTP_PHASE.as_secs()))),
    };
    // Its answer to QUIT changes nothing.
    let _ = tokio::time::timeout(Duration::from_secs(5), connection.quit()).await;
    sent
}

impl ChannelAdapter for EmailChannel {
    fn send<'a>(&'a self, send: &'a Send<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let (tenant_id, key, channel) = (send.tenant_id, send.idempotency_key, send.channel.as_str());
            if let Some(recorded) = self.store.recorded_send(tenant_id, key).await? {
                return Ok(Sent::Ended(recorded));
            }
            let outgoing = match self.prepare(send).await? {
                Ok(outgoing) => outgoing,
                Err(failed) => return Ok(Sent::Ended(self.store.record_send(tenant_id, key, channel, &failed, send.now).await?)),
            };
            // Committed before the connection: a node that dies from here
            // on leaves the send announced, and it is never made twice.
            match self.store.begin_send(tenant_id, key, channel, send.now).await? {
                SendClaim::Granted => {}
                SendClaim::Recorded(recorded) => return Ok(Sent::Ended(recorded)),
                SendClaim::Pending => return Ok(Sent::InFlight),
            }
            let outcome = match smtp_send(&outgoing.settings, &outgoing.secrets, outgoing.message).await {
                Ok(()) => outcome("DELIVERED", None),
                Err(SmtpFailure::NotSent(problem)) => outcome("FAILED", Some(problem)),
                Err(SmtpFailure::InDoubt(problem)) => return Ok(Sent::InDoubt(problem)),
            };
            Ok(Sent::Ended(self.store.record_send(tenant_id, key, channel, &outcome, send.now).await?))
        })
    }
}
