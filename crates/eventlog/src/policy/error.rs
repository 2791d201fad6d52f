//! Why a measured-boot policy could not be prepared or a reference state derived.

use thiserror::Error;

use crate::error::EventLogError;

/// Why a policy could not be prepared or a reference state derived.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MbPolicyError {
    #[error(
        "there is no measured-boot policy named {0:?} (built in: accept-all, reject-all, example)"
    )]
    UnknownPolicy(String),
    #[error("invalid reference state: {at} {reason}")]
    InvalidRefState { at: String, reason: String },
    #[error("reference state {at} has {count} entries, more than the {max} allowed")]
    TooLarge {
        at: String,
        count: usize,
        max: usize,
    },
    #[error("reference state {at}: regular expression {pattern:?} is not supported: {reason}")]
    BadRegex {
        at: String,
        pattern: String,
        reason: String,
    },
    #[error("event log cannot be parsed: {0}")]
    EventLog(#[from] EventLogError),
    #[error(
        "the event log has Secure Boot disabled; create the reference state without Secure Boot (--without-secureboot)"
    )]
    SecureBootDisabled,
    #[error("cannot derive a reference state from this event log: {0}")]
    Underivable(String),
}
