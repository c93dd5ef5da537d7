//! SMTP: handing a message to an SMTP integration's server, step by step,
//! so a failure before the server had the message is told from one after
//! it (SMTP takes no idempotency key: the caller must know whether the
//! message may have gone out). Email Notification and Email Communication
//! both send through here.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::Message;
use stratagem_domain::JsonMap;

/// The sender of an SMTP integration's mail.
pub fn from_mailbox(settings: &JsonMap) -> Result<Mailbox, String> {
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
pub enum SmtpFailure {
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
pub async fn smtp_send(settings: &JsonMap, secrets: &JsonMap, message: Message) -> Result<(), SmtpFailure> {
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
