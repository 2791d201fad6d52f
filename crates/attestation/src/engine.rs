//! The attestation engine: `evidence + policy + prior state -> verdict + next state`.
//!
//! Pure: no I/O, no clock reads, no randomness, no global state. The pull loop, the push
//! endpoint, `/verify/evidence` and `keylime_attest` all call [`attest`], so a replay of
//! stored inputs gives the same verdict by construction.
//!
//! Order (each stage stops the attestation on failure unless noted), as upstream's
//! `process_quote_response` + `Tpm.check_quote`:
//! 1. `qoute_validation.no_pubkey` — data binding required but no key in the evidence nor
//!    the state;
//! 2. `qoute_validation.invalid_{hash,enc,sign}_alg` — reported algorithms not accepted;
//! 3. `qoute_validation.quote_validation` — quote not valid (see [`crate::quote`]);
//! 4. `qoute_validation.quote_validation` — clock rules (see [`crate::clock`]);
//! 5. PCR checks (see [`crate::pcr_checks`]), recoverable events, all collected.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::ak::{AkError, PreparedAk};
use crate::algorithms::AcceptedAlgorithms;
use crate::clock::{ClockTransition, TpmClockInfo, check_clock};
use crate::evidence;
use crate::failure::{Component, Failure, FailureEvent, SeverityPolicy};
use crate::pcr_checks::{EvidenceCheck, PcrCheckInput, PcrClaims, check_tpm_policy};
use crate::quote::{Nonce, QuotedPcrs, verify_quote};
use crate::state::AgentState;
use crate::tpm_policy::TpmPolicy;
use keylime_eventlog::PreparedMbPolicy;
use keylime_ima::PreparedRuntimePolicy;

/// What the agent sent with one quote (pull: the `/quotes/integrity` response; push: the
/// `tpm_quote` evidence rebuilt into a quote string), with its IMA list chunk and boot log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteEvidence<'a> {
    /// `r<b64 TPMS_ATTEST>:<b64 TPMT_SIGNATURE>:<b64 PCR blob>`.
    #[serde(borrow)]
    pub quote: Cow<'a, str>,
    #[serde(borrow)]
    pub hash_alg: Cow<'a, str>,
    #[serde(borrow)]
    pub enc_alg: Cow<'a, str>,
    #[serde(borrow)]
    pub sign_alg: Cow<'a, str>,
    /// `pubkey` (PEM text), present on `partial=0` quotes.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub pubkey_pem: Option<Cow<'a, str>>,
    /// `ima_measurement_list`: the ASCII list from `ima_measurement_list_entry` on.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub ima_measurement_list: Option<Cow<'a, str>>,
    /// `ima_measurement_list_entry`: index of the list's first entry (0 = whole list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ima_measurement_list_entry: Option<u64>,
    /// `mb_measurement_list`: base64 of the binary UEFI event log.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub mb_measurement_list: Option<Cow<'a, str>>,
    /// `boottime` (seconds since the epoch; upstream's Rust agent does not send it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boottime: Option<u64>,
}

/// The per-agent policy as stored (serde); prepare it once with [`PreparedPolicy::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentPolicy {
    /// `TPM2B_PUBLIC` of the AK, base64 in serialized form (upstream's `ak_tpm`).
    #[serde(with = "b64")]
    pub ak_tpm: Vec<u8>,
    #[serde(default)]
    pub tpm_policy: TpmPolicy,
    #[serde(flatten)]
    pub accept: AcceptedAlgorithms,
    /// Require PCR 16 to bind the payload key (pull mode: true; push mode and
    /// `/verify/evidence`: false).
    pub check_pcr16: bool,
    /// Apply the clock rules against the prior state (false for `/verify/evidence`, which
    /// has no state).
    #[serde(default = "yes")]
    pub check_clock: bool,
}

fn yes() -> bool {
    true
}

/// An [`AgentPolicy`] parsed for repeated use (the AK is parsed once here), with the
/// prepared runtime and measured-boot policies (shared by every agent naming them).
#[derive(Clone)]
pub struct PreparedPolicy {
    pub ak: PreparedAk,
    pub tpm_policy: TpmPolicy,
    pub accept: AcceptedAlgorithms,
    pub check_pcr16: bool,
    pub check_clock: bool,
    pub severity: Arc<SeverityPolicy>,
    /// Check the reported algorithms against `accept` (false for `/verify/evidence`, which
    /// reports only `hash_alg`).
    pub check_algorithms: bool,
    /// The runtime policy; `None`: PCR 10 is still replayed from the list (chain only).
    pub runtime_policy: Option<Arc<PreparedRuntimePolicy>>,
    /// The measured-boot policy; `None` or empty: the boot log only feeds boot aggregates.
    pub mb_policy: Option<Arc<PreparedMbPolicy>>,
    /// `measured_boot_evaluate = always` (else once, on the first attestation).
    pub mb_evaluate_always: bool,
    /// `ignore_tomtou_errors`, upstream's semantics (PROTOCOL.md §11 Q3).
    pub ignore_tomtou_errors: bool,
}

impl std::fmt::Debug for PreparedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedPolicy")
            .field("tpm_policy", &self.tpm_policy)
            .field("accept", &self.accept)
            .field("check_pcr16", &self.check_pcr16)
            .field("check_clock", &self.check_clock)
            .field("runtime_policy", &self.runtime_policy.is_some())
            .field("mb_policy", &self.mb_policy.is_some())
            .finish_non_exhaustive()
    }
}

impl PreparedPolicy {
    pub fn new(policy: &AgentPolicy, severity: Arc<SeverityPolicy>) -> Result<Self, AkError> {
        Ok(PreparedPolicy {
            ak: PreparedAk::from_tpm2b(&policy.ak_tpm)?,
            tpm_policy: policy.tpm_policy.clone(),
            accept: policy.accept.clone(),
            check_pcr16: policy.check_pcr16,
            check_clock: policy.check_clock,
            severity,
            check_algorithms: true,
            runtime_policy: None,
            mb_policy: None,
            mb_evaluate_always: false,
            ignore_tomtou_errors: false,
        })
    }
}

/// Pass, or the reasons for failing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail(Failure),
}

/// The result of one attestation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// The state to keep for the next attestation (on failure: what the verifier should
    /// keep, i.e. the prior state with only the accepted algorithms updated).
    pub next_state: AgentState,
    /// The PCR values the quote proved, when the quote itself was valid.
    pub pcrs: Option<QuotedPcrs>,
    /// The quote's clock, when the quote itself was valid.
    pub clock: Option<TpmClockInfo>,
    /// How the clock moved (absent when the clock was not checked or was rejected).
    pub clock_transition: Option<ClockTransition>,
    /// The attestation passed with a payload key different from the prior one: the pull
    /// verifier must deliver V again (state PROVIDE_V).
    pub pubkey_changed: bool,
    /// IMA entries whose template hash and PCR 10 replay were processed this round.
    #[serde(default)]
    pub ima_chain_entries: u64,
    /// IMA entries evaluated against the runtime policy this round.
    #[serde(default)]
    pub ima_evaluated_entries: u64,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        matches!(self.outcome, Outcome::Pass)
    }

    pub fn failure(&self) -> Option<&Failure> {
        match &self.outcome {
            Outcome::Fail(f) => Some(f),
            Outcome::Pass => None,
        }
    }
}

/// Check one quote. See the module docs for the order of checks.
pub fn attest(
    evidence: &QuoteEvidence<'_>,
    nonce: &Nonce,
    policy: &PreparedPolicy,
    prior: &AgentState,
) -> Verdict {
    let sev = &*policy.severity;
    let mut next = prior.clone();
    let fail = |next: AgentState, event: FailureEvent, pcrs, clock| {
        tracing::info!(event_id = %event.event_id, context = %event.context, "attestation failed");
        Verdict {
            outcome: Outcome::Fail(Failure {
                events: vec![event],
            }),
            next_state: next,
            pcrs,
            clock,
            clock_transition: None,
            pubkey_changed: false,
            ima_chain_entries: 0,
            ima_evaluated_entries: 0,
        }
    };
    let qv = Component::QuoteValidation;

    let pubkey = evidence
        .pubkey_pem
        .as_deref()
        .or(prior.pubkey_pem.as_deref());
    if policy.check_pcr16 && pubkey.is_none() {
        let ctx = json!({
            "message": "agent did not provide public key and no key or encrypted_v was cached at CV",
            "data": null,
        });
        return fail(next, sev.event(qv, "no_pubkey", ctx, false), None, None);
    }

    let checked = if policy.check_algorithms {
        policy
            .accept
            .check(&evidence.hash_alg, &evidence.enc_alg, &evidence.sign_alg)
    } else {
        evidence
            .hash_alg
            .parse::<keylime_tpm::HashAlg>()
            .map_err(|_| crate::algorithms::AlgorithmRejection::Hash(evidence.hash_alg.to_string()))
    };
    let hash = match checked {
        Ok(h) => h,
        Err(rej) => {
            // Upstream records each algorithm as soon as it is accepted.
            match rej {
                crate::algorithms::AlgorithmRejection::Hash(_) => {}
                crate::algorithms::AlgorithmRejection::Encryption(_) => {
                    next.hash_alg = Some(evidence.hash_alg.to_string());
                }
                crate::algorithms::AlgorithmRejection::Signing(_) => {
                    next.hash_alg = Some(evidence.hash_alg.to_string());
                    next.enc_alg = Some(evidence.enc_alg.to_string());
                }
            }
            let ev = sev.event(qv, rej.event_name(), rej.context(), false);
            return fail(next, ev, None, None);
        }
    };
    next.hash_alg = Some(evidence.hash_alg.to_string());
    next.enc_alg = Some(evidence.enc_alg.to_string());
    next.sign_alg = Some(evidence.sign_alg.to_string());

    let quote = match verify_quote(
        &evidence.quote,
        &policy.ak,
        nonce,
        hash,
        policy.check_algorithms.then_some(&*evidence.sign_alg),
    ) {
        Ok(q) => q,
        Err(e) => {
            let ctx = json!({ "message": "Quote data validation", "error": e.to_string() });
            return fail(
                next,
                sev.event(qv, "quote_validation", ctx, false),
                None,
                None,
            );
        }
    };
    let clock = TpmClockInfo::from(quote.clock);

    let transition = if policy.check_clock {
        match check_clock(prior.tpm_clockinfo.as_ref(), &clock) {
            Ok(t) => Some(t),
            Err(e) => {
                let ctx = json!({
                    "message": "Validation of clockinfo from quote using tpm2-tools",
                    "data": e.to_string(),
                });
                let ev = sev.event(qv, "quote_validation", ctx, false);
                return fail(next, ev, Some(quote.pcrs), Some(clock));
            }
        }
    } else {
        None
    };

    let input = PcrCheckInput {
        pcrs: &quote.pcrs,
        pubkey_pem: pubkey,
        tpm_policy: &policy.tpm_policy,
        severity: sev,
    };
    let mut claims = PcrClaims::default();
    let mut events = Vec::new();
    if policy.check_pcr16 {
        EvidenceCheck::DataBinding.run(&input, &mut claims, &mut events);
    }
    let quoted = evidence::quoted_bytes(&quote.pcrs);
    let cx = evidence::QuoteContext {
        evidence,
        pcrs: &quote.pcrs,
        quoted: &quoted,
        policy,
        prior,
        sev,
    };
    let mb = evidence::measured_boot(&cx, &mut claims, &mut events);
    let ima = evidence::ima(
        &cx,
        transition.as_ref(),
        &mb.boot_aggregates,
        &mut claims,
        &mut events,
    );
    check_tpm_policy(&input, &claims, &mut events);

    if !events.is_empty() {
        for e in &events {
            tracing::info!(event_id = %e.event_id, context = %e.context, "attestation failed");
        }
        // Any failure restarts the IMA replay from entry 0 next time (upstream).
        next.ima = keylime_ima::ImaState::default();
        return Verdict {
            outcome: Outcome::Fail(Failure { events }),
            next_state: next,
            pcrs: Some(quote.pcrs),
            clock: Some(clock),
            clock_transition: transition,
            pubkey_changed: false,
            ima_chain_entries: ima.chain_entries,
            ima_evaluated_entries: ima.evaluated_entries,
        };
    }
    next.ima = ima.next_state;
    next.mb_evaluated |= mb.evaluated;

    let new_key = evidence.pubkey_pem.as_deref();
    let pubkey_changed = new_key.is_some_and(|k| prior.pubkey_pem.as_deref() != Some(k));
    if policy.check_clock {
        next.accept(clock, transition, new_key);
    } else {
        next.attestation_count += 1;
        if let Some(k) = new_key {
            next.pubkey_pem = Some(k.to_string());
        }
    }
    Verdict {
        outcome: Outcome::Pass,
        next_state: next,
        pcrs: Some(quote.pcrs),
        clock: Some(clock),
        clock_transition: transition,
        pubkey_changed,
        ima_chain_entries: ima.chain_entries,
        ima_evaluated_entries: ima.evaluated_entries,
    }
}

/// Serde helper: bytes as standard base64 text.
mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}
