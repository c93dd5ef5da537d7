//! Phase 3, conversations: answers contacts who wrote in open sessions
//! and ends sessions gone quiet past the inactivity timeout, each claimed
//! with a lease ([`crate::conversations`] says how).

use futures::StreamExt;

use super::Tick;
use crate::{Engine, EngineError, IN_FLIGHT};

impl Engine {
    pub(super) async fn conversations(&self, tick: &mut Tick) -> Result<(), EngineError> {
        let now = self.clock.now();
        let lease_until = now + self.config.lease;
        let awaiting = self.store.conversations().claim_awaiting_answers(now, lease_until, self.config.batch).await?;
        let inactive = self.store.conversations().claim_inactive_sessions(now, now - self.config.session_timeout, lease_until, self.config.batch).await?;
        for session in awaiting.iter().chain(&inactive) {
            self.load_campaign(&mut tick.cache, &session.tenant_id, &session.campaign_id).await?;
        }
        {
            let cache = &tick.cache;
            let answered: Vec<Result<bool, EngineError>> = futures::stream::iter(awaiting)
                .map(|session| async move { self.answer(cache, &session).await })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
            for outcome in answered {
                tick.report.answered += usize::from(outcome?);
            }
            let ended: Vec<Result<bool, EngineError>> = futures::stream::iter(inactive)
                .map(|session| async move { self.end_inactive(cache, &session).await })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
            for outcome in ended {
                tick.report.timed_out += usize::from(outcome?);
            }
        }
        Ok(())
    }
}
