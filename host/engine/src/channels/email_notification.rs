//! Email Notification: the stage's template rendered for the contact and
//! sent over SMTP with the stage's SMTP integration. One-way: the session
//! ends at delivery — `DELIVERED` when the server accepted the message,
//! `FAILED` with the server's answer when it could not be reached or
//! refused it, `IN_DOUBT` when it had the whole message and its answer was
//! lost (it may deliver it).
//!
//! SMTP has no idempotency key. The send is announced, committed, before
//! the connection is opened (`Dispatch::begin_send`), and its outcome recorded
//! after: a send already recorded is not repeated, and one announced with
//! no outcome — its node died between the server's acceptance and the
//! record — is not repeated either: the engine marks it IN_DOUBT. The
//! `Message-ID` is `<communication id@…>`.

use lettre::message::Mailbox;
use lettre::Message;
use stratagem_domain::template::render_email;
use stratagem_domain::JsonMap;
use stratagem_outbound::smtp::{smtp_send, stage_email, SmtpFailure};
use stratagem_outbound::EgressPolicy;
use stratagem_store::{SendClaim, Store, StoreError};

use super::{ChannelAdapter, ChannelError, Send, SendFuture, Sent};

pub struct EmailNotification {
    pub store: Store,
    /// Which addresses the SMTP servers may resolve to.
    pub egress: EgressPolicy,
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

impl EmailNotification {
    /// The message for the contact, or the outcome of a send that cannot
    /// be made (`FAILED`, saying why).
    async fn prepare(&self, send: &Send<'_>) -> Result<Result<Outgoing, JsonMap>, ChannelError> {
        let settings = send.settings;
        let integration_id = settings.integration_id.as_deref().unwrap_or_default();
        let integration = match self.store.integrations().integration(send.tenant_id, integration_id).await {
            Ok(integration) => integration,
            Err(StoreError::NotFound(_)) => {
                return Ok(Err(outcome("FAILED", Some(format!("the stage's SMTP integration `{integration_id}` no longer exists")))));
            }
            Err(other) => return Err(other.into()),
        };
        let secrets = self.store.integrations().integration_secrets(send.tenant_id, integration_id).await?;
        let email = match render_email(
            settings.email_subject.as_deref().unwrap_or_default(),
            settings.email_template.as_deref().unwrap_or_default(),
            settings.email_input_type.unwrap_or_default(),
            send.contact,
        ) {
            Ok(email) => email,
            Err((field, error)) => return Ok(Err(outcome("FAILED", Some(format!("{field}: {error}"))))),
        };
        let to: Mailbox = match format!("{} <{}>", send.contact.name.replace(['<', '>', '"'], ""), send.contact.email).parse() {
            Ok(to) => to,
            Err(_) => return Ok(Err(outcome("FAILED", Some(format!("contact {} has no valid email address", send.contact.object_id))))),
        };
        Ok(match stage_email(&integration.settings, to, format!("<{}@stratagem>", send.idempotency_key), email) {
            Ok(message) => Ok(Outgoing { settings: integration.settings, secrets, message }),
            Err(problem) => Err(outcome("FAILED", Some(problem))),
        })
    }
}

impl ChannelAdapter for EmailNotification {
    fn send<'a>(&'a self, send: &'a Send<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let (tenant_id, key, channel) = (send.tenant_id, send.idempotency_key, send.channel.as_str());
            if let Some(recorded) = self.store.dispatch().recorded_send(tenant_id, key).await? {
                return Ok(Sent::Ended(recorded));
            }
            let outgoing = match self.prepare(send).await? {
                Ok(outgoing) => outgoing,
                Err(failed) => return Ok(Sent::Ended(self.store.dispatch().record_send(tenant_id, key, channel, &failed, send.now).await?)),
            };
            // Committed before the connection: a node that dies from here
            // on leaves the send announced, and it is never made twice.
            match self.store.dispatch().begin_send(tenant_id, key, channel, send.now).await? {
                SendClaim::Granted => {}
                SendClaim::Recorded(recorded) => return Ok(Sent::Ended(recorded)),
                SendClaim::Pending => return Ok(Sent::InFlight),
            }
            let outcome = match smtp_send(&outgoing.settings, &outgoing.secrets, outgoing.message, self.egress).await {
                Ok(()) => outcome("DELIVERED", None),
                Err(SmtpFailure::NotSent(problem)) => outcome("FAILED", Some(problem)),
                Err(SmtpFailure::InDoubt(problem)) => return Ok(Sent::InDoubt(problem)),
            };
            Ok(Sent::Ended(self.store.dispatch().record_send(tenant_id, key, channel, &outcome, send.now).await?))
        })
    }
}
