//! keylime-attestation: the attestation engine (ARCHITECTURE.md principle 1).
//!
//! [`attest`] is a pure function: quote evidence + a prepared per-agent policy + the prior
//! per-agent state → a [`Verdict`] (pass, or a [`Failure`] of upstream-compatible
//! [`FailureEvent`]s with severities) and the next [`AgentState`]. No I/O, no async, no
//! clock reads; everything the verifier persists or replays is serde-serializable.
//!
//! Modules:
//! * [`quote`] — quote string, AK signature, nonce, PCR digest ([`verify_quote`], also
//!   usable alone for `/verify/identity`);
//! * [`ak`] — the AK parsed once, verified with ring on the hot path;
//! * [`algorithms`] — `accept_tpm_*_algs`;
//! * [`clock`] — TPM clock rules across quotes (reboots and resumes accepted);
//! * [`pcr_checks`] — PCR 16 binding, the IMA / measured-boot seam ([`EvidenceCheck`],
//!   [`PcrClaims`]) and `tpm_policy` evaluation;
//! * [`tpm_policy`] — the static PCR policy format;
//! * [`failure`] — event ids, severities (`severity_labels` / `severity_policy`);
//! * `inputs` — the engine's inputs ([`QuoteEvidence`], [`AgentPolicy`],
//!   [`PreparedPolicy`]);
//! * `evidence` — the measured-boot and IMA checks (boot log replay before the MB policy,
//!   the IMA chain before the runtime policy; incremental IMA progress);
//! * [`state`] — the per-agent state.
//!
//! This crate must not do I/O, read the system clock, or depend on a TPM or database.
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
