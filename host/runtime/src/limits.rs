//! Per-invocation resource limits and the accounting behind the usage
//! figures reported with every result.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one invocation may consume. Every limit has a violated-path test in
/// `tests/limits.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Wasm fuel for the hook call (instantiation is not charged).
    pub fuel: u64,
    /// Wall-clock time for the hook call, host calls included.
    pub time: Duration,
    /// Linear memory the instance may grow to, in bytes.
    pub memory_bytes: usize,
    /// Size of the returned contact, in bytes of its JSON form.
    pub output_bytes: usize,
    /// Log bytes kept per invocation; the rest is dropped and counted.
    pub log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 2_000_000_000,
            time: Duration::from_secs(5),
            memory_bytes: 256 << 20,
            output_bytes: 1 << 20,
            log_bytes: 64 << 10,
        }
    }
}

/// Memory accounting of one store: enforces `Limits::memory_bytes` and
/// remembers the peak and whether the guest was refused memory, so an
/// allocation bomb is reported as a memory limit even when Python turns the
/// refusal into a `MemoryError`.
#[derive(Debug, Default)]
pub(crate) struct MemoryLimiter {
    pub(crate) limit: usize,
    pub(crate) peak: usize,
    pub(crate) refused: bool,
}

impl MemoryLimiter {
    pub(crate) fn reset(&mut self, limit: usize, current: usize) {
        self.limit = limit;
        self.peak = current;
        self.refused = false;
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.refused = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// What an invocation consumed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub fuel: u64,
    /// Peak linear memory of the instance, in bytes.
    pub peak_memory_bytes: usize,
    #[serde(rename = "duration_us", with = "duration_micros")]
    pub duration: Duration,
    /// Outbound HTTP requests the strategy made that went out (a request
    /// denied before it left is not counted).
    #[serde(default)]
    pub http_calls: u64,
}

mod duration_micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_micros() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_micros(u64::deserialize(deserializer)?))
    }
}
