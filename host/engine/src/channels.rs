//! Channel adapters: how a communication reaches a contact and what its
//! session produced. Every send carries the communication id as its
//! idempotency key; an adapter that reaches someone records the outcome
//! under it first, so a send retried after a crash returns the recorded
//! outcome instead of reaching the contact twice. One that reaches no one
//! (the simulated population) leaves the record to the engine, which
//! writes it with the session's end in one transaction.
//!
//! A server that takes no idempotency key (SMTP) cannot tell a retry from
//! a new message, so a crash between its acceptance and the record would
//! reach the contact twice. Such an adapter announces the send, committed,
//! before the network call (`Store::begin_send`): only the attempt that
//! announced it sends, and a send whose outcome is lost is
//! [`Sent::InDoubt`] — or, when its node died, made IN_DOUBT by the
//! engine's sweep — never sent again.

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
    pub contact_id: &'a str,
    pub contact: &'a Contact,
    /// How many of the contact's other communications went out before.
    pub earlier_sends: usize,
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
    /// Another attempt announced this send and has recorded no outcome yet:
    /// it sends, or died sending (then the claim becomes IN_DOUBT). Nothing
    /// to write.
    InFlight,
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Sent, ChannelError>> + std::marker::Send + 'a>>;

/// Starts a communication; says how its session ended, or that it is open.
pub trait ChannelAdapter: std::marker::Send + Sync {
    fn send<'a>(&'a self, send: &'a Send<'a>) -> SendFuture<'a>;
}

/// How a simulated population answers: outcomes (`OutcomeStatus`) with
/// weights, e.g. `NO_RESPONSE=35,PROMISE_TO_PAY=30,PAID=20,REFUSED=15`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Personas(Vec<(String, u64)>);

impl Default for Personas {
    fn default() -> Self {
        Personas::parse("NO_RESPONSE=35,PROMISE_TO_PAY=30,PAID=20,REFUSED=15").unwrap_or(Personas(Vec::new()))
    }
}

impl Personas {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut mix = Vec::new();
        for part in text.split(',').map(str::trim).filter(|part| !part.is_empty()) {
            let (name, weight) =
                part.split_once('=').ok_or_else(|| format!("`{part}`: write each persona as OUTCOME=WEIGHT, e.g. PAID=20"))?;
            let weight: u64 = weight.trim().parse().map_err(|_| format!("`{part}`: the weight must be a whole number"))?;
            let name = name.trim().to_ascii_uppercase();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`{part}`: an outcome is letters, digits and _"));
            }
            mix.push((name, weight));
        }
        if mix.iter().map(|(_, weight)| weight).sum::<u64>() == 0 {
            return Err("give at least one persona with a weight above 0".into());
        }
        Ok(Personas(mix))
    }

    /// The answer to the `attempt`-th send (0-based) to a contact: its
    /// `persona` parameter if it has one — a script like
    /// `NO_RESPONSE>PROMISE_TO_PAY>PAID` answers in turn and then repeats
    /// its last step — else an outcome drawn by a stable hash of its
    /// object id.
    pub fn answer(&self, contact: &Contact, attempt: usize) -> String {
        if let Some(script) = contact.parameters.get("persona").and_then(|value| value.as_str()).filter(|s| !s.trim().is_empty()) {
            let steps: Vec<&str> = script.split('>').map(str::trim).collect();
            return steps[attempt.min(steps.len() - 1)].to_ascii_uppercase();
        }
        let total: u64 = self.0.iter().map(|(_, weight)| weight).sum();
        let mut bucket = fnv1a(contact.object_id.as_bytes()) % total.max(1);
        for (name, weight) in &self.0 {
            if bucket < *weight {
                return name.clone();
            }
            bucket -= weight;
        }
        "NO_RESPONSE".into()
    }
}

/// Reaches no one: each contact answers as its persona.
pub struct SimulatedChannel {
    pub personas: Personas,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

impl ChannelAdapter for SimulatedChannel {
    fn send<'a>(&'a self, send: &'a Send<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let persona = self.personas.answer(send.contact, send.earlier_sends);
            let mut outcome = JsonMap::new();
            outcome.insert("OutcomeStatus".into(), persona.as_str().into());
            if persona == "PROMISE_TO_PAY" {
                let promised = (send.now + chrono::Duration::days(3)).format("%Y-%m-%dT09:00:00").to_string();
                outcome.insert("PromiseDate".into(), promised.into());
            }
            Ok(Sent::Simulated(outcome))
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
            Ok(Sent::Ended(outcome))
        })
    }
}

/// A task in the operators' queue (`/api/tasks`): the session is open until
/// an operator records the outcome. Opening it twice is opening one task.
pub struct Human;

impl ChannelAdapter for Human {
    fn send<'a>(&'a self, _send: &'a Send<'a>) -> SendFuture<'a> {
        Box::pin(async move { Ok(Sent::Open) })
    }
}

/// The adapter of each channel. In a simulation every channel but the
/// final stage is the simulated one.
pub struct Channels {
    simulated: SimulatedChannel,
    email: crate::email::EmailChannel,
    simulate_every_channel: bool,
}

impl Channels {
    pub fn new(store: Store, personas: Personas, simulate_every_channel: bool) -> Self {
        Self {
            email: crate::email::EmailChannel { store },
            simulated: SimulatedChannel { personas },
            simulate_every_channel,
        }
    }

    pub fn adapter(&self, channel: Channel) -> Result<&dyn ChannelAdapter, ChannelError> {
        match channel {
            Channel::NoCommunication => Ok(&NoCommunication),
            Channel::Human => Ok(&Human),
            Channel::Simulated => Ok(&self.simulated),
            _ if self.simulate_every_channel => Ok(&self.simulated),
            Channel::EmailNotification => Ok(&self.email),
            other => Err(ChannelError::NoAdapter(other.as_str())),
        }
    }
}
