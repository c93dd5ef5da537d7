//! Requests per API key: a token bucket per key, so one tenant's runaway
//! script gets 429 with `Retry-After` instead of starving the node's API
//! for everybody else. Per node: behind a load balancer over N nodes a
//! key may send up to N times the rate.

use std::time::Duration;

use stratagem_services::rate::Buckets;

pub struct KeyBuckets {
    per_second: u32,
    buckets: Buckets,
}

impl KeyBuckets {
    /// `per_second` requests a second per key, with bursts of twice that.
    pub fn new(per_second: u32) -> Self {
        let per_second = per_second.max(1);
        Self { per_second, buckets: Buckets::new(f64::from(per_second), per_second.saturating_mul(2)) }
    }

    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    /// Takes one request's token from `key`'s bucket, or says how long
    /// until one is there.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        self.buckets.take(key)
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
