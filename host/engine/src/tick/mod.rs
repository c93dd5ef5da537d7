//! One tick of phases 1–5, each its own module, in order:
//!
//! 1. [`missed`]: windows that passed, sends in doubt;
//! 2. [`due`]: due communications claimed and started through their channel;
//! 3. [`conversations`]: contacts answered, quiet sessions ended;
//! 4. [`aggregation`]: AGGREGATION on ended sessions, applied in one commit;
//! 5. [`completion`]: finished campaigns.
//!
//! Phase 6 (Deep Analysis) is [`crate::analysis`], in its own loop.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use stratagem_store::ContactAtRevision;

use crate::campaigns::TickCache;
use crate::{Engine, EngineError, TickReport};

mod aggregation;
mod completion;
mod conversations;
mod due;
mod missed;

/// What the phases of one tick share.
pub(crate) struct Tick {
    /// When the tick began: phases 1 and 2 act as of this instant.
    now: DateTime<Utc>,
    report: TickReport,
    /// Campaigns read this tick.
    cache: TickCache,
    /// Contacts read this tick, at their revision: those of the sends,
    /// which the sessions that ended at their send are aggregated from,
    /// then those of other ended sessions.
    contacts: HashMap<String, ContactAtRevision>,
}

impl Engine {
    /// Phases 1–5: what moves campaigns forward.
    pub(crate) async fn run_campaigns(&self) -> Result<TickReport, EngineError> {
        let mut tick = Tick { now: self.clock.now(), report: TickReport::default(), cache: TickCache::default(), contacts: HashMap::new() };
        self.missed_windows(&mut tick).await?;
        let ended_at_send = self.due_sends(&mut tick).await?;
        self.conversations(&mut tick).await?;
        self.aggregation(&mut tick, ended_at_send).await?;
        self.completion(&mut tick).await?;
        Ok(tick.report)
    }
}
