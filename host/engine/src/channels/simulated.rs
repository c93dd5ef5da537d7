//! SIMULATED, and every channel in a dry run: reaches no one; each
//! contact answers as its persona.

use stratagem_domain::{Contact, JsonMap};

use super::{ChannelAdapter, Send, SendFuture, Sent};

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
        // Any spelling of the header, as every other column is matched.
        let persona = contact.parameters.iter().find(|(name, _)| name.eq_ignore_ascii_case("persona")).map(|(_, value)| value);
        if let Some(script) = persona.and_then(|value| value.as_str()).filter(|s| !s.trim().is_empty()) {
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
