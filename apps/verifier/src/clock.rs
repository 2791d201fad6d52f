//! The wall clock as the verifier stores it: whole seconds since the Unix epoch (the
//! `last_received_quote`, `last_successful_attestation` and webhook outbox columns).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; 0 for a clock set before it.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
