//! The clock strategies see: the wall clock in a live campaign, virtual
//! time in the simulator. Both the `clock` import and WASI's wall clock
//! (hence Python's `datetime.now()`) read it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The host's real time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Time that moves only when told to (simulator, tests, `--now`).
#[derive(Debug)]
pub struct VirtualClock(Mutex<DateTime<Utc>>);

impl VirtualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(start))
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = now;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The clock of one store. A reused instance keeps its store across
/// invocations, so the clock is swapped per call through this slot.
#[derive(Clone)]
pub(crate) struct ClockSlot(Arc<Mutex<Arc<dyn Clock>>>);

impl ClockSlot {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Self(Arc::new(Mutex::new(clock)))
    }

    pub(crate) fn set(&self, clock: Arc<dyn Clock>) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = clock;
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).now()
    }
}

impl wasmtime_wasi::HostWallClock for ClockSlot {
    fn resolution(&self) -> Duration {
        Duration::from_micros(1)
    }

    fn now(&self) -> Duration {
        let now = ClockSlot::now(self);
        // Times before 1970 cannot be expressed by WASI; clamp to the epoch.
        Duration::new(now.timestamp().max(0) as u64, now.timestamp_subsec_nanos())
    }
}
