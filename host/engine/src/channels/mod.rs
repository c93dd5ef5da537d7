//! Channels: how a communication reaches a contact and what its session
//! produced. One trait, [`ChannelAdapter`], and one registry,
//! [`Channels::adapter`], for every channel of the domain's
//! `Channel` table: one file per adapter here, and every channel carried
//! by an integration goes through [`provider::ProviderChannel`] to the
//! provider client of its integration kind (`stratagem_outbound::providers`),
//! so a new provider channel is a provider file and its registry entry
//! there, and nothing here.
//!
//! Every send carries the communication id as its idempotency key; an
//! adapter that reaches someone records the outcome under it first, so a send retried after a crash returns the recorded
//! outcome instead of reaching the contact twice. One that reaches no one
//! (the simulated population) leaves the record to the engine, which
//! writes it with the session's end in one transaction.
//!
//! A server that takes no idempotency key (SMTP) cannot tell a retry from
//! a new message, so a crash between its acceptance and the record would
//! reach the contact twice. Such an adapter announces the send, committed,
//! before the network call (`Dispatch::begin_send`): only the attempt that
//! announced it sends, and a send whose outcome is lost is
//! [`Sent::InDoubt`] — or, when its node died, made IN_DOUBT by the
//! engine's sweep — never sent again.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use stratagem_domain::stage::ChannelSettings;
use stratagem_domain::{Campaign, Channel, Contact, JsonMap};
use stratagem_outbound::{providers, OutboundConfig};
use stratagem_runtime::Clock;
use stratagem_store::Store;

mod email_notification;
mod human;
mod no_communication;
pub mod provider;
mod simulated;

pub use email_notification::EmailNotification;
pub use human::Human;
pub use no_communication::NoCommunication;
pub use provider::ProviderChannel;
pub use simulated::{Personas, SimulatedChannel};

/// What an adapter is asked to do.
pub struct Send<'a> {
    /// The communication id; providers that take an idempotency key get it.
    pub idempotency_key: &'a str,
    pub tenant_id: &'a str,
    pub contact_id: &'a str,
    pub contact: &'a Contact,
    /// How many of the contact's other communications went out before.
    pub earlier_sends: usize,
    pub channel: Channel,
    /// The A/B label of the stage's variant the contact got.
    pub label: &'a str,
    pub campaign: &'a Campaign,
    pub agent_id: Option<&'a str>,
    /// The stage's settings with what the communication's `parameters`
    /// override ([`ChannelSettings::overridden_by`]).
    pub settings: &'a ChannelSettings,
    /// The communication's `parameters`, as the strategy set them.
    pub parameters: &'a JsonMap,
    pub now: DateTime<Utc>,
}

impl Send<'_> {
    /// The `template_variables` object of the communication's parameters:
    /// the values of a provider template's variables, by name.
    pub fn template_variables(&self) -> &JsonMap {
        static NONE: std::sync::OnceLock<JsonMap> = std::sync::OnceLock::new();
        self.parameters.get("template_variables").and_then(serde_json::Value::as_object).unwrap_or_else(|| NONE.get_or_init(JsonMap::new))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("channel {0} has no adapter in this release; use SIMULATED or another channel")]
    NoAdapter(&'static str),
    #[error("recording the send: {0}")]
    Store(#[from] stratagem_store::StoreError),
}

/// How a send left the session.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    /// The session ended with these `session_results`, recorded under the
    /// idempotency key by the adapter.
    Ended(JsonMap),
    /// The session ended with these `session_results` and reached no one
    /// outside: the engine records the send with the session's end.
    Simulated(JsonMap),
    /// The session stays open until an outside event ends it (an operator
    /// records the outcome of a HUMAN task).
    Open,
    /// The send may have reached the contact and its outcome is unknown
    /// (the server stopped answering after it had the message): the engine
    /// ends the session IN_DOUBT with this detail; it is never sent again.
    InDoubt(String),
    /// The provider could not take it for now (5xx, 429, unreachable), and
    /// nothing was sent: the engine tries again later, under the same
    /// idempotency key, while the window is open.
    RetryLater(String),
    /// Another attempt announced this send and has recorded no outcome yet:
    /// it sends, or died sending (then the claim becomes IN_DOUBT). Nothing
    /// to write.
    InFlight,
    /// The adapter wrote how the session started itself (a provider's
    /// conversation opened at the contact's address, or its end): nothing
    /// for the engine's batch to write.
    Written,
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Sent, ChannelError>> + std::marker::Send + 'a>>;

/// Starts a communication; says how its session ended, or that it is open.
/// Every channel has one ([`Channels::adapter`]).
pub trait ChannelAdapter: std::marker::Send + Sync {
    fn send<'a>(&'a self, send: &'a Send<'a>) -> SendFuture<'a>;
}

/// What adapters that reach the outside world work with.
#[derive(Clone)]
pub struct ChannelContext {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// The egress-guarded client for providers and LLM endpoints.
    pub http: reqwest::Client,
    pub outbound: OutboundConfig,
}

/// The registry: the adapter of each channel. In a simulation every
/// channel but the final stage is the simulated one.
pub struct Channels {
    simulated: SimulatedChannel,
    email_notification: EmailNotification,
    provider: ProviderChannel,
    simulate_every_channel: bool,
}

impl Channels {
    pub fn new(context: ChannelContext, personas: Personas, simulate_every_channel: bool) -> Self {
        Self {
            simulated: SimulatedChannel { personas },
            email_notification: EmailNotification { store: context.store.clone(), egress: context.outbound.egress() },
            provider: ProviderChannel::new(context),
            simulate_every_channel,
        }
    }

    /// How the simulated population answers.
    pub fn set_personas(&mut self, personas: Personas) {
        self.simulated = SimulatedChannel { personas };
    }

    pub fn adapter(&self, channel: Channel) -> Result<&dyn ChannelAdapter, ChannelError> {
        Ok(match channel {
            Channel::NoCommunication => &NoCommunication,
            Channel::Human => &Human,
            Channel::Simulated => &self.simulated,
            _ if self.simulate_every_channel => &self.simulated,
            Channel::EmailNotification => &self.email_notification,
            // The domain says which integration kind carries the channel;
            // that kind's provider client speaks to it.
            _ if channel.integration_kind().and_then(providers::provider).is_some() => &self.provider,
            other => return Err(ChannelError::NoAdapter(other.as_str())),
        })
    }
}
