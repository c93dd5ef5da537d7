//! SMTP: handing a message to an SMTP integration's server, step by step,
//! so a failure before the server had the message is told from one after
//! it (SMTP takes no idempotency key: the caller must know whether the
//! message may have gone out). Email Notification, Email Communication and
//! the stage editor's test email all build their message with
//! [`stage_email`] and send it through [`smtp_deliver`].

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::{Address, Message};
use stratagem_domain::template::RenderedEmail;
use stratagem_domain::JsonMap;

use crate::egress::{reachable_addresses, EgressPolicy};

/// The sender of an SMTP integration's mail.
pub fn from_mailbox(settings: &JsonMap) -> Result<Mailbox, String> {
    let address = settings.get("from_address").and_then(|v| v.as_str()).unwrap_or_default();
    address.parse().map_err(|error| format!("the integration's from_address `{address}`: {error}"))
}

/// A stage's email as it goes out through an SMTP integration: from the
/// integration's `from_address` to `to`, under `message_id`
/// (`<…@stratagem>`), the rendered HTML with its text/plain alternative.
/// The error says what to fix.
pub fn stage_email(settings: &JsonMap, to: Mailbox, message_id: String, email: RenderedEmail) -> Result<Message, String> {
    Message::builder()
        .message_id(Some(message_id))
        .from(from_mailbox(settings)?)
        .to(to)
        .subject(email.subject)
        .multipart(MultiPart::alternative_plain_html(email.text, email.html))
        .map_err(|error| format!("the message cannot be built: {error}"))
}

/// The longest address SMTP carries (RFC 5321's path limit, less `<>`).
const MAX_ADDRESS_CHARS: usize = 254;

/// One recipient's address as a person typed it: exactly one address,
/// alone on one line — no display name, no list, no line break that could
/// start a header of its own. The error says what to change.
pub fn single_address(typed: &str) -> Result<Address, String> {
    let text = typed.trim();
    if text.is_empty() {
        return Err("enter the email address to send to".into());
    }
    if text.chars().any(char::is_control) {
        return Err("must be one address on one line: remove the line break or control character".into());
    }
    if text.chars().count() > MAX_ADDRESS_CHARS {
        return Err(format!("must be at most {MAX_ADDRESS_CHARS} characters"));
    }
    if text.contains(['<', '>', '"']) {
        return Err("must be the address alone, as name@example.com, without a display name".into());
    }
    if text.contains([',', ';']) || text.contains(char::is_whitespace) {
        return Err("must be one address: send to one recipient at a time".into());
    }
    text.parse().map_err(|error| format!("`{text}` is not an email address ({error}); write it as name@example.com"))
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

/// The step of an SMTP send at which the server answered a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpStep {
    /// Its greeting or its answer to our hello.
    Greeting,
    /// The integration's username and password.
    Login,
    /// The sender (`MAIL FROM`, the integration's `from_address`).
    Sender,
    /// A recipient (`RCPT TO`).
    Recipient,
    /// The message itself (`DATA` and its end).
    Message,
}

/// [`SmtpFailure`] in detail, for a caller that tells a person what to
/// fix: whether the server was never reached, refused the message (at
/// which step, and whether for now or for good), or may have it. Each
/// text names the server and quotes its answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpError {
    /// Nothing was delivered: the server's name did not resolve, the
    /// connection or TLS failed, or it did not get as far as taking the
    /// message in time.
    #[error("{0}")]
    Unreachable(String),
    /// Nothing was delivered: the server answered a refusal at `step`;
    /// `temporary` for a 4xx answer (the same send may work later).
    #[error("{detail}")]
    Refused { step: SmtpStep, temporary: bool, detail: String },
    /// The server had the whole message, then its answer was lost: it may
    /// deliver it.
    #[error("{0}")]
    InDoubt(String),
}

impl From<SmtpError> for SmtpFailure {
    fn from(error: SmtpError) -> Self {
        match error {
            SmtpError::Unreachable(detail) | SmtpError::Refused { detail, .. } => SmtpFailure::NotSent(detail),
            SmtpError::InDoubt(detail) => SmtpFailure::InDoubt(detail),
        }
    }
}

/// Hands `message` to an SMTP integration's server: [`smtp_deliver`],
/// told only as sent, not sent or in doubt.
pub async fn smtp_send(settings: &JsonMap, secrets: &JsonMap, message: Message, egress: EgressPolicy) -> Result<(), SmtpFailure> {
    smtp_deliver(settings, secrets, message, egress).await.map_err(SmtpFailure::from)
}

/// Hands `message` to an SMTP integration's server. The server has the
/// message only once its end has been written; a failure before that
/// reached no one, one after it is in doubt unless the server answered a
/// refusal. The server's name is resolved under `egress`: a name that
/// leads only to private addresses is not reached (unless allowed), and
/// the connection goes to the address checked, never to a second lookup.
pub async fn smtp_deliver(settings: &JsonMap, secrets: &JsonMap, message: Message, egress: EgressPolicy) -> Result<(), SmtpError> {
    let text = |map: &JsonMap, key: &str| map.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let host = text(settings, "host");
    let port = settings.get("port").and_then(|v| v.as_u64()).unwrap_or(587) as u16;
    let server = format!("SMTP server {host}:{port}");
    let tls = settings.get("tls").and_then(|v| v.as_str()).unwrap_or("starttls").to_owned();
    let username = text(settings, "username");
    let envelope = message.envelope().clone();
    let body = message.formatted();
    let hello = ClientId::default();
    // An answer of the server at `step` is its refusal; anything else
    // (the connection, TLS, a timeout) means it was not reached.
    let failed = |step: SmtpStep| {
        let server = &server;
        move |error: lettre::transport::smtp::Error| {
            let detail = format!("{server}: {error}");
            if error.is_transient() || error.is_permanent() {
                SmtpError::Refused { step, temporary: error.is_transient(), detail }
            } else {
                SmtpError::Unreachable(detail)
            }
        }
    };
    let unsupported = |step: SmtpStep, why: &str| SmtpError::Refused { step, temporary: false, detail: format!("{server}: {why}") };
    let unreachable = |why: String| SmtpError::Unreachable(format!("{server}: {why}"));
    // Connect, say hello (TLS and login as the integration says), and get
    // the server's go-ahead for the message: nothing has gone out yet.
    let ready = async {
        let wrapper = match tls.as_str() {
            "tls" => Some(TlsParameters::new(host.clone()).map_err(|e| unreachable(e.to_string()))?),
            _ => None,
        };
        let addresses = reachable_addresses(&host, port, egress.allow_private_endpoints).await.map_err(&unreachable)?;
        let mut connection = AsyncSmtpConnection::connect_tokio1(addresses.as_slice(), Some(SMTP_PHASE), &hello, wrapper, None)
            .await
            .map_err(failed(SmtpStep::Greeting))?;
        if tls != "none" && tls != "tls" {
            let parameters = TlsParameters::new(host.clone()).map_err(|e| unreachable(e.to_string()))?;
            connection.starttls(parameters, &hello).await.map_err(failed(SmtpStep::Greeting))?;
        }
        if !username.is_empty() {
            let credentials = Credentials::new(username.clone(), text(secrets, "password"));
            connection.auth(&[Mechanism::Plain, Mechanism::Login], &credentials).await.map_err(|error| match error.is_client() {
                // No mechanism in common: the server will not take this login either.
                true => unsupported(SmtpStep::Login, &error.to_string()),
                false => failed(SmtpStep::Login)(error),
            })?;
        }
        let mut options = Vec::new();
        if !envelope.to().iter().chain(envelope.from()).all(|address: &lettre::Address| AsRef::<str>::as_ref(address).is_ascii()) {
            if !connection.server_info().supports_feature(Extension::SmtpUtfEight) {
                return Err(unsupported(SmtpStep::Sender, "the addresses are not ASCII and the server does not support SMTPUTF8"));
            }
            options.push(MailParameter::SmtpUtfEight);
        }
        if !body.is_ascii() {
            if !connection.server_info().supports_feature(Extension::EightBitMime) {
                return Err(unsupported(SmtpStep::Message, "the message is not ASCII and the server does not support 8BITMIME"));
            }
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        connection.command(Mail::new(envelope.from().cloned(), options)).await.map_err(failed(SmtpStep::Sender))?;
        for to in envelope.to() {
            connection.command(Rcpt::new(to.clone(), Vec::new())).await.map_err(failed(SmtpStep::Recipient))?;
        }
        connection.command(Data).await.map_err(failed(SmtpStep::Message))?;
        Ok(connection)
    };
    let mut connection = match tokio::time::timeout(SMTP_PHASE, ready).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => return Err(error),
        Err(_) => return Err(SmtpError::Unreachable(format!("{server} did not take the message within {} s", SMTP_PHASE.as_secs()))),
    };
    // From the message's first byte on, the server may have it.
    let sent = match tokio::time::timeout(SMTP_PHASE, connection.message(&body)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) if error.is_transient() || error.is_permanent() => Err(failed(SmtpStep::Message)(error)),
        Ok(Err(error)) => Err(SmtpError::InDoubt(format!("{server} had the message, then: {error}"))),
        Err(_) => Err(SmtpError::InDoubt(format!("{server} had the message and did not confirm it within {} s", SMTP_PHASE.as_secs()))),
    };
    // Its answer to QUIT changes nothing.
    let _ = tokio::time::timeout(Duration::from_secs(5), connection.quit()).await;
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server named by a host that resolves inward is never connected
    /// to, whether the name is written as an address or not (`localhost`
    /// stands for any such name here: its address comes from the hosts
    /// file, not from how it is written).
    #[tokio::test]
    async fn errors_when_the_server_name_resolves_only_to_private_addresses() {
        let mut settings = JsonMap::new();
        settings.insert("host".into(), "localhost".into());
        settings.insert("port".into(), 1.into()); // nothing listens: a connection would fail otherwise
        settings.insert("from_address".into(), "from@example.com".into());
        let email = RenderedEmail { subject: "S".into(), html: "<p>B</p>".into(), text: "B".into() };
        let message = || stage_email(&settings, "to@example.com".parse().expect("address"), "<t@stratagem>".into(), email.clone()).expect("message");
        let refused = smtp_deliver(&settings, &JsonMap::new(), message(), EgressPolicy::default()).await.expect_err("refused");
        assert!(matches!(&refused, SmtpError::Unreachable(why) if why.contains("resolves only to private or local addresses")), "{refused:?}");
        // Allowed, it is tried: and nothing listens there.
        let allowed = smtp_deliver(&settings, &JsonMap::new(), message(), EgressPolicy { allow_private_endpoints: true }).await.expect_err("no server");
        assert!(matches!(&allowed, SmtpError::Unreachable(why) if !why.contains("private")), "{allowed:?}");
    }

    #[test]
    fn works_when_one_address_is_typed_alone() {
        assert_eq!(single_address(" me@example.com\t").map(|a| a.to_string()), Ok("me@example.com".to_owned()));
    }

    #[test]
    fn errors_when_a_recipient_is_not_exactly_one_address_on_one_line() {
        for (typed, says) in [
            ("", "enter the email address"),
            ("me@example.com\r\nBcc: evil@example.com", "one line"),
            ("me@example.com\u{0}", "one line"),
            ("me@example.com,evil@example.com", "one recipient at a time"),
            ("me@example.com evil@example.com", "one recipient at a time"),
            ("Me <me@example.com>", "without a display name"),
            ("example.com", "is not an email address"),
        ] {
            let refused = single_address(typed).expect_err(typed);
            assert!(refused.contains(says), "{typed:?}: {refused}");
        }
        assert!(single_address(&format!("{}@example.com", "a".repeat(250))).expect_err("long").contains("at most 254"));
    }

    #[test]
    fn works_when_a_stage_email_has_one_recipient_and_its_headers_only() {
        let settings: JsonMap = serde_json::from_value(serde_json::json!({"from_address": "billing@example.com"})).expect("settings");
        let email = RenderedEmail { subject: "Invoice".into(), html: "<p>Hi</p>".into(), text: "Hi".into() };
        let to = single_address("me@example.com").expect("address");
        let message = stage_email(&settings, to.into(), "<t1@stratagem>".into(), email.clone()).expect("message");
        assert_eq!(message.envelope().to().iter().map(ToString::to_string).collect::<Vec<_>>(), ["me@example.com"]);
        let text = String::from_utf8(message.formatted()).expect("text");
        assert!(text.contains("Subject: Invoice\r\n") && text.contains("Message-ID: <t1@stratagem>\r\n"), "{text}");
        let no_from = stage_email(&JsonMap::new(), single_address("me@example.com").expect("address").into(), "<t2@stratagem>".into(), email);
        assert!(no_from.expect_err("no from address").starts_with("the integration's from_address ``"));
    }
}
