//! Token buckets per key: a steady rate with bursts, for limits that
//! answer "retry after …" instead of queueing — an API key's requests
//! (`stratagem-api`'s rate limit), a tenant's test emails ([`crate::email`]).
//! Per node: behind a load balancer over N nodes a key may get up to N
//! times the rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before idle (full) ones are dropped.
const MAX_BUCKETS: usize = 10_000;

pub struct Buckets {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Buckets {
    /// `per_second` tokens a second per key (may be below one), at most
    /// `burst` at once; a new key starts full.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self { per_second: per_second.max(f64::MIN_POSITIVE), burst: f64::from(burst.max(1)), buckets: Mutex::default() }
    }

    /// Takes one token from `key`'s bucket, or says how long until one is
    /// there.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, bucket| bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * per_second < burst);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: self.burst, updated: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * self.per_second).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_a_slow_rate_allows_its_burst_then_says_when() {
        // Five a minute.
        let buckets = Buckets::new(5.0 / 60.0, 5);
        for _ in 0..5 {
            assert!(buckets.take("tenant").is_ok());
        }
        let wait = buckets.take("tenant").expect_err("the sixth within the minute waits");
        assert!(wait > Duration::from_secs(11) && wait <= Duration::from_secs(12), "one token comes back every 12 s: {wait:?}");
        assert!(buckets.take("other").is_ok(), "another key has its own bucket");
    }
}
