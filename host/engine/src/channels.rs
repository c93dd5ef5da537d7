//! Channel adapters: how a communication reaches a contact and what its
//! session produced. Every send carries the communication id as its
//! idempotency key; the outcome is recorded under it first, so a send
//! retried after a crash returns the recorded outcome instead of reaching
//! the contact twice.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use stratagem_domain::stage::ChannelSettings;
use stratagem_domain::{Channel, Contact, JsonMap};
use stratagem_store::Store;

/// What an adapter is asked to do.
pub struct Send<'a> {
    /// The communication id; providers that take an idempotency key get it.
    pub idempotency_key: &'a str,
    pub tenant_id: &'a str,
    pub contact: &'a Contact,
    pub channel: Channel,
    pub agent_id: Option<&'a str>,
    pub settings: &'a ChannelSettings,
    pub now: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("channel {0} has no adapter in this release; use SIMULATED or another channel")]
    NoAdapter(&'static str),
    #[error("recording the send: {0}")]
    Store(#[from] stratagem_store::StoreError),
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<JsonMap, ChannelError>> + std::marker::Send + 'a>>;

/// Starts a communication and returns the `session_results` of its
/// session once it ended.
pub trait ChannelAdapter: std::marker::Send + Sync {
    fn send<'a>(&'a self, send: &'a Send<'a>) -> SendFuture<'a>;
}

/// Personas of the simulated population: how a contact answers.
pub const PERSONAS: [(&str, u64); 4] = [("NO_RESPONSE", 35), ("PROMISE_TO_PAY", 30), ("PAID", 20), ("REFUSED", 15)];

/// Reaches no one: each contact answers as its persona — the contact's
/// `persona` parameter if it names one, else one drawn from [`PERSONAS`]
/// by a stable hash of its object id.
pub struct SimulatedChannel {
    pub store: Store,
}

impl SimulatedChannel {
    pub fn persona(contact: &Contact) -> &'static str {
        let named = contact.parameters.get("persona").and_then(|value| value.as_str()).map(str::to_ascii_uppercase);
        if let Some((persona, _)) = PERSONAS.iter().find(|(persona, _)| Some(*persona) == named.as_deref()) {
            return persona;
        }
        let total: u64 = PERSONAS.iter().map(|(_, weight)| weight).sum();
        let mut bucket = fnv1a(contact.object_id.as_bytes()) % total;
        for (persona, weight) in PERSONAS {
            if bucket < weight {
                return persona;
            }
            bucket -= weight;
        }
        PERSONAS[0].0
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

impl ChannelAdapter for SimulatedChannel {
    fn send<'a>(&'a self, send: &'a Send<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let persona = SimulatedChannel::persona(send.contact);
            let mut outcome = JsonMap::new();
            outcome.insert("OutcomeStatus".into(), persona.into());
            if persona == "PROMISE_TO_PAY" {
                let promised = (send.now + chrono::Duration::days(3)).format("%Y-%m-%dT09:00:00").to_string();
                outcome.insert("PromiseDate".into(), promised.into());
            }
            Ok(self.store.record_send(send.tenant_id, send.idempotency_key, "SIMULATED", &outcome).await?)
        })
    }
}

/// The final stage: nobody is contacted and the session ends at once.
pub struct NoCommunication;

impl ChannelAdapter for NoCommunication {
    fn send<'a>(&'a self, _send: &'a Send<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let mut outcome = JsonMap::new();
            outcome.insert("OutcomeStatus".into(), "NO_COMMUNICATION".into());
            Ok(outcome)
        })
    }
}

/// The adapter of each channel.
pub struct Channels {
    simulated: SimulatedChannel,
}

impl Channels {
    pub fn new(store: Store) -> Self {
        Self { simulated: SimulatedChannel { store } }
    }

    pub fn adapter(&self, channel: Channel) -> Result<&dyn ChannelAdapter, ChannelError> {
        match channel {
            Channel::Simulated => Ok(&self.simulated),
            Channel::NoCommunication => Ok(&NoCommunication),
            other => Err(ChannelError::NoAdapter(other.as_str())),
        }
    }
}
