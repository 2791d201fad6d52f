//! Fixed-window rate limiting of session creation (PROTOCOL.md §6.6): at most `limit`
//! requests per key per `window`; a key that exceeds it is blocked for 60·2^(n−1) s
//! (at most an hour), n counting its successive violations.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys tracked; beyond it, keys whose window and block are over are dropped first.
const MAX_KEYS: usize = 100_000;
const BASE_BLOCK: Duration = Duration::from_secs(60);
const MAX_BLOCK: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    window_start: Instant,
    count: u32,
    violations: u32,
    blocked_until: Option<Instant>,
}

/// One limiter (per IP or per agent).
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        RateLimiter {
            limit,
            window,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Count a request of `key`: `Ok` if allowed, else `Err(seconds to wait)`.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = buckets.get(key).and_then(|b| b.blocked_until)
            && until > now
        {
            return Err(ceil_secs(until - now));
        }
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            let window = self.window;
            buckets.retain(|_, b| {
                now.duration_since(b.window_start) < window
                    || b.blocked_until.is_some_and(|u| u > now)
            });
            if buckets.len() >= MAX_KEYS {
                return Err(ceil_secs(window));
            }
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            window_start: now,
            count: 0,
            violations: 0,
            blocked_until: None,
        });
        if now.duration_since(bucket.window_start) >= self.window {
            bucket.window_start = now;
            bucket.count = 0;
        }
        if bucket.count < self.limit {
            bucket.count += 1;
            return Ok(());
        }
        bucket.violations = bucket.violations.saturating_add(1);
        let block = BASE_BLOCK
            .checked_mul(1 << bucket.violations.saturating_sub(1).min(6))
            .unwrap_or(MAX_BLOCK)
            .min(MAX_BLOCK);
        bucket.blocked_until = Some(now + block);
        bucket.window_start = now;
        bucket.count = 0;
        Err(ceil_secs(block))
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_and_doubles() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(limiter.check_at("a", t0).is_ok());
        assert!(limiter.check_at("a", t0).is_ok());
        assert_eq!(limiter.check_at("a", t0), Err(60));
        assert!(limiter.check_at("b", t0).is_ok(), "keys are independent");
        assert_eq!(limiter.check_at("a", t0 + Duration::from_secs(59)), Err(1));
        let t1 = t0 + Duration::from_secs(60);
        assert!(limiter.check_at("a", t1).is_ok());
        assert!(limiter.check_at("a", t1).is_ok());
        assert_eq!(limiter.check_at("a", t1), Err(120));
        let t2 = t1 + Duration::from_secs(20_000);
        for _ in 0..8 {
            let _ = limiter.check_at("a", t2);
        }
        assert!(limiter.check_at("a", t2).unwrap_err() <= 3600);
    }
}
