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

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::algorithms::AlgorithmRejection;
use crate::clock::{ClockTransition, TpmClockInfo, check_clock};
use crate::evidence;
use crate::failure::{Component, Failure, FailureEvent};
use crate::inputs::{PreparedPolicy, QuoteEvidence};
use crate::pcr_checks::{EvidenceCheck, PcrCheckInput, PcrClaims, check_tpm_policy};
use crate::quote::{Nonce, QuotedPcrs, VerifiedQuote, verify_quote};
use crate::state::AgentState;

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
    /// A pass leaving `next_state`; the quote facts are filled in by the caller.
    pub fn pass(next_state: AgentState) -> Self {
        Verdict {
            outcome: Outcome::Pass,
            next_state,
            pcrs: None,
            clock: None,
            clock_transition: None,
            pubkey_changed: false,
            ima_chain_entries: 0,
            ima_evaluated_entries: 0,
        }
    }

    /// A failure with `events`, leaving `next_state` (what the verifier keeps).
    pub fn fail(events: Vec<FailureEvent>, next_state: AgentState) -> Self {
        Verdict {
            outcome: Outcome::Fail(Failure { events }),
            ..Verdict::pass(next_state)
        }
    }

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

/// Check one quote. See the module docs for the order of checks: each stage below either
/// passes on what the next needs or stops the round with its failure event.
pub fn attest(
    evidence: &QuoteEvidence<'_>,
    nonce: &Nonce,
    policy: &PreparedPolicy,
    prior: &AgentState,
) -> Verdict {
    let mut next = prior.clone();
    let stopped = |next: AgentState, event: Stop| {
        let event = *event;
        tracing::info!(event_id = %event.event_id, context = %event.context, "attestation failed");
        Verdict::fail(vec![event], next)
    };
    let pubkey = match payload_key(evidence, policy, prior) {
        Ok(k) => k,
        Err(event) => return stopped(next, event),
    };
    let hash = match reported_algorithms(evidence, policy, &mut next) {
        Ok(h) => h,
        Err(event) => return stopped(next, event),
    };
    let quote = match quote_signature(evidence, policy, nonce, hash) {
        Ok(q) => q,
        Err(event) => return stopped(next, event),
    };
    let clock = TpmClockInfo::from(quote.clock);
    let transition = match clock_rules(policy, prior, &clock) {
        Ok(t) => t,
        Err(event) => {
            return Verdict {
                pcrs: Some(quote.pcrs),
                clock: Some(clock),
                ..stopped(next, event)
            };
        }
    };
    let found = pcr_checks(
        evidence,
        policy,
        prior,
        &quote.pcrs,
        pubkey,
        transition.as_ref(),
    );
    let (chain_entries, evaluated_entries) = (found.ima.chain_entries, found.ima.evaluated_entries);
    let with_quote_facts = move |verdict: Verdict| Verdict {
        pcrs: Some(quote.pcrs),
        clock: Some(clock),
        clock_transition: transition,
        ima_chain_entries: chain_entries,
        ima_evaluated_entries: evaluated_entries,
        ..verdict
    };
    if !found.events.is_empty() {
        for e in &found.events {
            tracing::info!(event_id = %e.event_id, context = %e.context, "attestation failed");
        }
        // Any failure restarts the IMA replay from entry 0 next time (upstream).
        next.ima = keylime_ima::ImaState::default();
        return with_quote_facts(Verdict::fail(found.events, next));
    }
    let pubkey_changed = accept(&mut next, evidence, policy, prior, found, clock, transition);
    with_quote_facts(Verdict {
        pubkey_changed,
        ..Verdict::pass(next)
    })
}

/// The failure event that stops a round at one of the stages below (boxed: an event with
/// its JSON context is large, and the stages' `Ok` values are small).
type Stop = Box<FailureEvent>;

/// Stage 1: the payload key PCR 16 must bind, from the evidence or the prior state.
fn payload_key<'e>(
    evidence: &'e QuoteEvidence<'_>,
    policy: &PreparedPolicy,
    prior: &'e AgentState,
) -> Result<Option<&'e str>, Stop> {
    let pubkey = evidence
        .pubkey_pem
        .as_deref()
        .or(prior.pubkey_pem.as_deref());
    if policy.check_pcr16 && pubkey.is_none() {
        let ctx = json!({
            "message": "agent did not provide public key and no key or encrypted_v was cached at CV",
            "data": null,
        });
        return Err(Box::new(policy.severity.event(
            Component::QuoteValidation,
            "no_pubkey",
            ctx,
            false,
        )));
    }
    Ok(pubkey)
}

/// Stage 2: the reported algorithms are accepted; `next` records each one accepted, as
/// upstream does, even when a later one is refused.
fn reported_algorithms(
    evidence: &QuoteEvidence<'_>,
    policy: &PreparedPolicy,
    next: &mut AgentState,
) -> Result<keylime_tpm::HashAlg, Stop> {
    let checked = if policy.check_algorithms {
        policy
            .accept
            .check(&evidence.hash_alg, &evidence.enc_alg, &evidence.sign_alg)
    } else {
        evidence
            .hash_alg
            .parse::<keylime_tpm::HashAlg>()
            .map_err(|_| AlgorithmRejection::Hash(evidence.hash_alg.to_string()))
    };
    match checked {
        Ok(hash) => {
            next.hash_alg = Some(evidence.hash_alg.to_string());
            next.enc_alg = Some(evidence.enc_alg.to_string());
            next.sign_alg = Some(evidence.sign_alg.to_string());
            Ok(hash)
        }
        Err(rej) => {
            match rej {
                AlgorithmRejection::Hash(_) => {}
                AlgorithmRejection::Encryption(_) => {
                    next.hash_alg = Some(evidence.hash_alg.to_string());
                }
                AlgorithmRejection::Signing(_) => {
                    next.hash_alg = Some(evidence.hash_alg.to_string());
                    next.enc_alg = Some(evidence.enc_alg.to_string());
                }
            }
            Err(Box::new(policy.severity.event(
                Component::QuoteValidation,
                rej.event_name(),
                rej.context(),
                false,
            )))
        }
    }
}

/// Stage 3: the quote is signed by the AK over the nonce and the PCRs it carries.
fn quote_signature(
    evidence: &QuoteEvidence<'_>,
    policy: &PreparedPolicy,
    nonce: &Nonce,
    hash: keylime_tpm::HashAlg,
) -> Result<VerifiedQuote, Stop> {
    verify_quote(
        &evidence.quote,
        &policy.ak,
        nonce,
        hash,
        policy.check_algorithms.then_some(&*evidence.sign_alg),
    )
    .map_err(|e| {
        let ctx = json!({ "message": "Quote data validation", "error": e.to_string() });
        Box::new(
            policy
                .severity
                .event(Component::QuoteValidation, "quote_validation", ctx, false),
        )
    })
}

/// Stage 4: the TPM clock moved as a running or rebooted TPM's may (when checked).
fn clock_rules(
    policy: &PreparedPolicy,
    prior: &AgentState,
    clock: &TpmClockInfo,
) -> Result<Option<ClockTransition>, Stop> {
    if !policy.check_clock {
        return Ok(None);
    }
    check_clock(prior.tpm_clockinfo.as_ref(), clock)
        .map(Some)
        .map_err(|e| {
            let ctx = json!({
                "message": "Validation of clockinfo from quote using tpm2-tools",
                "data": e.to_string(),
            });
            Box::new(policy.severity.event(
                Component::QuoteValidation,
                "quote_validation",
                ctx,
                false,
            ))
        })
}

/// What the PCR checks found: their events (all collected) and what the measured-boot
/// and IMA checks carry to the next round.
struct PcrFindings {
    events: Vec<FailureEvent>,
    mb: evidence::MbOutcome,
    ima: evidence::ImaOutcome,
}

/// Stage 5: PCR 16 binding, the boot log and measured-boot policy, the IMA chunk and
/// runtime policy, then `tpm_policy` for the PCRs no check claimed.
fn pcr_checks(
    evidence: &QuoteEvidence<'_>,
    policy: &PreparedPolicy,
    prior: &AgentState,
    pcrs: &QuotedPcrs,
    pubkey: Option<&str>,
    transition: Option<&ClockTransition>,
) -> PcrFindings {
    let sev = &*policy.severity;
    let input = PcrCheckInput {
        pcrs,
        pubkey_pem: pubkey,
        tpm_policy: &policy.tpm_policy,
        severity: sev,
    };
    let mut claims = PcrClaims::default();
    let mut events = Vec::new();
    if policy.check_pcr16 {
        EvidenceCheck::DataBinding.run(&input, &mut claims, &mut events);
    }
    let quoted = evidence::quoted_bytes(pcrs);
    let cx = evidence::QuoteContext {
        evidence,
        pcrs,
        quoted: &quoted,
        policy,
        prior,
        sev,
    };
    let mb = evidence::measured_boot(&cx, &mut claims, &mut events);
    let ima = evidence::ima(
        &cx,
        transition,
        &mb.boot_aggregates,
        &mut claims,
        &mut events,
    );
    check_tpm_policy(&input, &claims, &mut events);
    PcrFindings { events, mb, ima }
}

/// Stage 6, on a pass: keep the IMA progress, the clock and the payload key for the next
/// round. Whether the key changed (V must be delivered again).
fn accept(
    next: &mut AgentState,
    evidence: &QuoteEvidence<'_>,
    policy: &PreparedPolicy,
    prior: &AgentState,
    found: PcrFindings,
    clock: TpmClockInfo,
    transition: Option<ClockTransition>,
) -> bool {
    next.ima = found.ima.next_state;
    next.mb_evaluated |= found.mb.evaluated;
    let new_key = evidence.pubkey_pem.as_deref();
    if policy.check_clock {
        next.accept(clock, transition, new_key);
    } else {
        next.attestation_count += 1;
        if let Some(k) = new_key {
            next.pubkey_pem = Some(k.to_string());
        }
    }
    new_key.is_some_and(|k| prior.pubkey_pem.as_deref() != Some(k))
}
