//! Phase 1, missed windows: communications whose window passed become
//! MISSED (never sent later), sends retried until their window passed
//! FAILED, and those a dead node was sending on a
//! channel without an idempotency key IN_DOUBT (never sent again).

use super::Tick;
use crate::{Engine, EngineError};

impl Engine {
    pub(super) async fn missed_windows(&self, tick: &mut Tick) -> Result<(), EngineError> {
        let now = tick.now;
        tick.report.missed = self.store.dispatch().mark_missed(now, self.config.default_window).await?;
        // Sends a provider kept refusing for now until their window passed.
        tick.report.failed = self.store.dispatch().fail_lapsed_retries(now, self.config.default_window).await?;
        // A send announced a lease ago whose claim expired with no outcome:
        // its node died between the network call and the record.
        tick.report.in_doubt = self.store.dispatch().mark_in_doubt(now, now - self.config.lease).await?;
        if !self.rate_limits.0.is_empty() {
            self.store.dispatch().prune_send_windows(now.timestamp() - 60).await?;
        }
        Ok(())
    }
}
