//! Phase 5, completion: RUNNING campaigns whose contacts all have a
//! final result and nothing pending become FINISHED.

use super::Tick;
use crate::{Engine, EngineError};

impl Engine {
    pub(super) async fn completion(&self, tick: &mut Tick) -> Result<(), EngineError> {
        tick.report.finished = self.store.dispatch().finish_done_campaigns(self.clock.now()).await?.len();
        Ok(())
    }
}
