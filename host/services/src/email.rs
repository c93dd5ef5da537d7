//! Test emails from the stage editor: the draft of an Email Notification
//! or Email Communication stage, rendered for a contact (a sample one
//! otherwise) and sent to one address, so its author sees it in a real
//! inbox before any contact does.
//!
//! What goes out is what a send of the stage would send: the same
//! rendering (`stratagem_domain::template::render_email`), the same
//! message (`stratagem_outbound::smtp::stage_email`) and the same SMTP
//! client (`smtp_deliver`), through the integration the stage would send
//! through — its own, else its agent channel's — which must be the
//! tenant's and an SMTP one. Only the recipient differs: the one address
//! asked for, never a list, never a header of its own. Its host is held to
//! the egress policy as when the integration was saved, and again where
//! it resolves, as every SMTP send is.
//!
//! So that this is not a way to send mail in bulk, each tenant may send
//! [`TEST_EMAILS_PER_MINUTE`] a minute (per node); the next is refused
//! with the time to wait. A send the server did not take is an error
//! saying why and what to change, never a success.

use std::sync::Arc;
use std::time::Duration;

use stratagem_domain::stage::{self, ChannelSettings};
use stratagem_domain::template::{self, field_error, render_email};
use stratagem_domain::{Channel, FieldError, IntegrationKind};
use stratagem_outbound::smtp::{single_address, smtp_deliver, stage_email, SmtpError, SmtpStep};
use stratagem_outbound::EgressPolicy;
use stratagem_store::{Store, StoreError};
use stratagem_types::stage::{EmailTest, EmailTestSent};

use crate::rate::Buckets;

/// Test emails a tenant may send a minute (per node), all at once or
/// spread out.
pub const TEST_EMAILS_PER_MINUTE: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum EmailTestError {
    /// Fields to change, each named: the address, a placeholder (with its
    /// line and column), the integration or agent channel.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// The tenant sent its test emails for now.
    #[error(
        "this tenant sent {per_minute} test emails within a minute, the most allowed; send the next one in {} s",
        .retry_after.as_secs_f64().ceil().max(1.0) as u64
    )]
    Limited { per_minute: u32, retry_after: Duration },
    /// The SMTP server answered a refusal: nothing was sent.
    #[error("{0}")]
    Refused(String),
    /// The SMTP server could not be reached: nothing was sent.
    #[error("{0}")]
    Unreachable(String),
    /// The SMTP server had the message, then its answer was lost.
    #[error("{0}")]
    InDoubt(String),
    /// `NotFound` for an integration or agent that is not the tenant's.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct EmailService {
    store: Store,
    egress: EgressPolicy,
    per_minute: u32,
    sent: Arc<Buckets>,
}

impl EmailService {
    pub fn new(store: Store) -> Self {
        let per_minute = TEST_EMAILS_PER_MINUTE;
        Self { store, egress: EgressPolicy::default(), per_minute, sent: Arc::new(per_minute_buckets(per_minute)) }
    }

    /// Whether SMTP hosts may be private addresses (the operator's
    /// `--allow-private-endpoints`, as for every integration).
    pub fn with_egress(mut self, egress: EgressPolicy) -> Self {
        self.egress = egress;
        self
    }

    /// At most `per_minute` test emails a minute per tenant.
    pub fn with_limit(mut self, per_minute: u32) -> Self {
        self.per_minute = per_minute.max(1);
        self.sent = Arc::new(per_minute_buckets(self.per_minute));
        self
    }

    /// Sends the test email `test` asks for, as the tenant's.
    pub async fn send_test(&self, tenant: &str, test: EmailTest) -> Result<EmailTestSent, EmailTestError> {
        let mut errors = Vec::new();
        let to = single_address(&test.to).map_err(|message| errors.push(FieldError::new("to", message))).ok();
        let contact = match test.contact.clone() {
            Some(contact) => Some(contact),
            None => template::sample_contact(&test.email_subject, &test.email_template)
                .map_err(|(field, error)| errors.push(field_error(field, error)))
                .ok(),
        };
        let email = contact.and_then(|contact| {
            render_email(&test.email_subject, &test.email_template, test.email_input_type, &contact)
                .map_err(|(field, error)| errors.push(field_error(field, error)))
                .ok()
        });
        let integration = self.integration(tenant, &test, &mut errors).await?;
        let (Some(to), Some(email), Some(integration), true) = (to, email, integration, errors.is_empty()) else {
            return Err(EmailTestError::Invalid(errors));
        };
        let host = integration.settings.get("host").and_then(|v| v.as_str()).unwrap_or_default();
        if let Err(problem) = self.egress.check_endpoint(host) {
            return Err(EmailTestError::Invalid(vec![FieldError::new("integration_id", problem)]));
        }
        let message_id = format!("<test-{}@stratagem>", uuid::Uuid::now_v7().simple());
        let subject = email.subject.clone();
        let message = stage_email(&integration.settings, to.clone().into(), message_id.clone(), email).map_err(|problem| {
            EmailTestError::Invalid(vec![FieldError::new("integration_id", format!("integration `{}`: {problem}", integration.name))])
        })?;
        // Counted once it will reach the server, whatever the server says.
        self.sent.take(tenant).map_err(|retry_after| EmailTestError::Limited { per_minute: self.per_minute, retry_after })?;
        let secrets = self.store.integrations().integration_secrets(tenant, &integration.id).await?;
        let to = to.to_string();
        tracing::info!(integration = %integration.id, "sending a test email");
        smtp_deliver(&integration.settings, &secrets, message, self.egress).await.map_err(|error| explain(&integration.name, &to, error))?;
        Ok(EmailTestSent { to, subject, integration_id: integration.id, message_id })
    }

    /// The SMTP integration the stage would send through, the tenant's;
    /// `None` with the reason in `errors` when none fits.
    async fn integration(
        &self,
        tenant: &str,
        test: &EmailTest,
        errors: &mut Vec<FieldError>,
    ) -> Result<Option<stratagem_domain::Integration>, EmailTestError> {
        let agent = match test.agent_id.as_deref().filter(|id| !id.trim().is_empty()) {
            Some(id) => Some(self.store.agents().agent(tenant, id).await?),
            None => None,
        };
        let settings = ChannelSettings {
            integration_id: test.integration_id.clone().filter(|id| !id.trim().is_empty()),
            agent_channel: test.agent_channel.clone().filter(|name| !name.trim().is_empty()),
            ..ChannelSettings::default()
        };
        // The field that chose the integration (or should have).
        let field = if settings.integration_id.is_none() && settings.agent_channel.is_some() { "agent_channel" } else { "integration_id" };
        let Some(id) = stage::integration_id(Channel::EmailCommunication, &settings, agent.as_ref().map(|agent| &agent.definition)) else {
            let message = match (&settings.agent_channel, &agent) {
                (Some(name), Some(agent)) => format!("agent `{}` has no channel `{name}`: choose one of its channels, or an SMTP integration", agent.definition.name),
                (Some(_), None) => "an agent channel needs its agent: choose the stage's agent, or an SMTP integration".to_owned(),
                _ => "choose the SMTP integration to send the test through (the stage's integration, or its agent's channel)".to_owned(),
            };
            errors.push(FieldError::new(field, message));
            return Ok(None);
        };
        let integration = self.store.integrations().integration(tenant, &id).await?;
        if integration.kind != IntegrationKind::Smtp {
            errors.push(FieldError::new(
                field,
                format!("integration `{}` is {}, which does not send email: choose an SMTP integration", integration.name, integration.kind.as_str()),
            ));
            return Ok(None);
        }
        Ok(Some(integration))
    }
}

/// `per_minute` a minute per key, all at once if need be.
fn per_minute_buckets(per_minute: u32) -> Buckets {
    Buckets::new(f64::from(per_minute) / 60.0, per_minute)
}

/// What went wrong at the SMTP server, and what to change.
fn explain(integration: &str, to: &str, error: SmtpError) -> EmailTestError {
    let server = format!("the SMTP server of integration `{integration}`");
    match error {
        SmtpError::Unreachable(detail) => EmailTestError::Unreachable(format!(
            "{server} could not be reached, so nothing was sent ({detail}). Check the integration's host, port and TLS setting, \
             and that the server is up and accepts connections from this service"
        )),
        SmtpError::Refused { step, temporary, detail } => {
            let (what, fix) = match step {
                SmtpStep::Greeting => ("the connection".to_owned(), "Check the integration's host, port and TLS setting".to_owned()),
                SmtpStep::Login => ("the integration's login".to_owned(), "Check its username and password".to_owned()),
                SmtpStep::Sender => {
                    ("the sender".to_owned(), "Set the integration's from address to one this server may send as".to_owned())
                }
                SmtpStep::Recipient => (format!("the recipient {to}"), "Check the address, or send the test to another one".to_owned()),
                SmtpStep::Message => ("the message".to_owned(), "Check the email for what the server may reject (its size, links)".to_owned()),
            };
            let when = if temporary { " The refusal is temporary: try again in a few minutes." } else { "" };
            EmailTestError::Refused(format!("{server} refused {what}, so nothing was sent ({detail}). {fix}.{when}"))
        }
        SmtpError::InDoubt(detail) => EmailTestError::InDoubt(format!(
            "{server} had the whole message, then its answer was lost ({detail}). It may still arrive at {to}: look there before sending another"
        )),
    }
}
