//! Bounded exponential backoff for talking to services that may not be up yet.
//!
//! Owns the delay arithmetic (`initial * 2^n`, capped at `max_delay`) and the retry loop
//! that asks the caller whether an error is worth another try. It knows nothing about
//! HTTP: the caller classifies its own errors.

use std::future::Future;
use std::time::Duration;

/// How often and how patiently an operation is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the first retry.
    pub initial_delay: Duration,
    /// Upper bound of any single delay.
    pub max_delay: Duration,
    /// Retries after the first attempt; `0` means "try once".
    pub max_retries: u32,
}

impl Default for RetryPolicy {
    /// Upstream's defaults (`exponential_backoff_*`): 10 s initial, 5 retries, 300 s cap.
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(10_000),
            max_delay: Duration::from_millis(300_000),
            max_retries: 5,
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `retry` (0-based): `initial * 2^retry`, capped at
    /// `max_delay`. Never overflows.
    pub fn delay_before_retry(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max_delay)
    }

    /// Sum of all delays if every retry is used: the longest time the loop sleeps.
    pub fn total_delay(&self) -> Duration {
        (0..self.max_retries)
            .map(|r| self.delay_before_retry(r))
            .fold(Duration::ZERO, Duration::saturating_add)
    }
}

/// Runs `operation` until it succeeds, fails with an error `is_transient` rejects, or the
/// policy's retries are spent; returns the last result. `what` names the operation in logs.
pub async fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut operation: F,
    is_transient: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut retry = 0u32;
    loop {
        match operation().await {
            Ok(value) => return Ok(value),
            Err(err) if is_transient(&err) && retry < policy.max_retries => {
                let delay = policy.delay_before_retry(retry);
                retry += 1;
                tracing::warn!(
                    operation = what,
                    error = %err,
                    retry,
                    max_retries = policy.max_retries,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "transient failure, retrying after backoff"
                );
                tokio::time::sleep(delay).await;
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy(initial_ms: u64, max_ms: u64, retries: u32) -> RetryPolicy {
        RetryPolicy {
            initial_delay: Duration::from_millis(initial_ms),
            max_delay: Duration::from_millis(max_ms),
            max_retries: retries,
        }
    }

    #[test]
    fn delays_double_until_the_cap() {
        let p = policy(100, 1_000, 10);
        let delays: Vec<u128> = (0..6)
            .map(|r| p.delay_before_retry(r).as_millis())
            .collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1_000, 1_000]);
    }

    #[test]
    fn huge_retry_numbers_saturate_at_the_cap() {
        let p = policy(10_000, 300_000, 5);
        assert_eq!(p.delay_before_retry(31), Duration::from_millis(300_000));
        assert_eq!(p.delay_before_retry(32), Duration::from_millis(300_000));
        assert_eq!(
            p.delay_before_retry(u32::MAX),
            Duration::from_millis(300_000)
        );
    }

    #[test]
    fn total_delay_sums_the_schedule() {
        assert_eq!(
            policy(10, 1_000, 4).total_delay(),
            Duration::from_millis(150)
        );
        assert_eq!(policy(10, 1_000, 0).total_delay(), Duration::ZERO);
        assert_eq!(
            RetryPolicy::default().total_delay(),
            Duration::from_secs(310)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_then_succeeds() {
        let calls = AtomicU32::new(0);
        let out: Result<u32, String> = retry(
            &policy(10, 100, 5),
            "test",
            || async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n < 3 {
                    Err(format!("down {n}"))
                } else {
                    Ok(n)
                }
            },
            |_| true,
        )
        .await;
        assert_eq!(out, Ok(3));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_retries_with_last_error() {
        let calls = AtomicU32::new(0);
        let out: Result<(), String> = retry(
            &policy(10, 100, 2),
            "test",
            || async { Err(format!("down {}", calls.fetch_add(1, Ordering::SeqCst))) },
            |_| true,
        )
        .await;
        assert_eq!(out, Err("down 2".to_string()));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let out: Result<(), String> = retry(
            &policy(10, 100, 5),
            "test",
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("forbidden".to_string())
            },
            |e| e != "forbidden",
        )
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
