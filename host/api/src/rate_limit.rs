//! Requests per API key: a token bucket per key, so one tenant's runaway
//! script gets 429 with `Retry-After` instead of starving the node's API
//! for everybody else. Per node: behind a load balancer over N nodes a
//! key may send up to N times the rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before idle (full) ones are dropped.
const MAX_BUCKETS: usize = 10_000;

pub struct KeyBuckets {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl KeyBuckets {
    /// `per_second` requests a second per key, with bursts of twice that.
    pub fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        Self { per_second, burst: per_second * 2.0, buckets: Mutex::default() }
    }

    pub fn per_second(&self) -> u32 {
        self.per_second as u32
    }

    /// Takes one request's token from `key`'s bucket, or says how long
    /// until one is there.
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
    fn works_when_a_key_stays_within_its_burst_and_others_are_apart() {
        let buckets = KeyBuckets::new(5);
        for _ in 0..10 {
            assert!(buckets.take("a").is_ok());
        }
        let wait = buckets.take("a").expect_err("the 11th request of a burst of 10 waits");
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(200), "{wait:?}");
        assert!(buckets.take("b").is_ok(), "another key has its own bucket");
    }
}
