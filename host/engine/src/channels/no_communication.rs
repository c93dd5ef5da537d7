//! NO_COMMUNICATION: the final stage.

use stratagem_domain::JsonMap;

use super::{ChannelAdapter, Send, SendFuture, Sent};

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
