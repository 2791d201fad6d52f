#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod ak;
pub mod algorithms;
pub mod clock;
mod engine;
mod evidence;
pub mod failure;
mod inputs;
pub mod pcr_checks;
pub mod quote;
pub mod state;
pub mod tpm_policy;

pub use ak::{AkError, PreparedAk};
pub use algorithms::AcceptedAlgorithms;
pub use clock::{ClockError, ClockTransition, TpmClockInfo, check_clock};
pub use engine::{Outcome, Verdict, attest};
pub use failure::{
    Component, Failure, FailureEvent, SeverityConfigError, SeverityPolicy, SeverityRule,
};
pub use inputs::{AgentPolicy, PreparedPolicy, QuoteEvidence};
pub use pcr_checks::{EvidenceCheck, PcrClaimant, PcrClaims};
pub use quote::{Nonce, QuoteError, QuotedPcrs, VerifiedQuote, verify_quote};
pub use state::AgentState;
pub use tpm_policy::{TpmPolicy, TpmPolicyError};
