//! The measured-boot check of one quote: parse and replay the agent's event log, compare
//! the replay with the quoted PCRs the policy covers, and only when they all agree
//! evaluate the policy. Failure ids and contexts are upstream's (`measured_boot.` +
//! `invalid_pcr_{n}`, `missing_pcrs`, `policy_{name}`, `parser.*`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::HashAlg;
use crate::log::EventLog;
use crate::replay::{PcrBanks, replay};

use super::{MbPolicyError, PreparedMbPolicy, Violation};

/// The upstream failure component an event id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MbComponent {
    /// `measured_boot.*`: everything but the case below.
    MeasuredBoot,
    /// `pcr_validation.unused_pcr_{n}`: a policy PCR was quoted but the agent sent no
    /// event log to replay it from.
    PcrValidation,
}

impl MbComponent {
    pub fn as_str(self) -> &'static str {
        match self {
            MbComponent::MeasuredBoot => "measured_boot",
            MbComponent::PcrValidation => "pcr_validation",
        }
    }
}

/// One failure event. `id` is relative to `component` (e.g. `invalid_pcr_4` for
/// `measured_boot.invalid_pcr_4`); all measured-boot events are recoverable upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct MbFailure {
    pub id: String,
    pub context: Value,
    pub recoverable: bool,
    pub component: MbComponent,
}

impl MbFailure {
    fn measured_boot(id: impl Into<String>, context: Value) -> Self {
        MbFailure {
            id: id.into(),
            context,
            recoverable: true,
            component: MbComponent::MeasuredBoot,
        }
    }

    /// The full event id, e.g. `measured_boot.invalid_pcr_4`.
    pub fn event_id(&self) -> String {
        format!("{}.{}", self.component.as_str(), self.id)
    }

    /// The failure upstream reports on every attestation when an agent's reference state
    /// cannot be compiled by its policy (upstream accepts any JSON at enrollment and fails
    /// the evaluation): `measured_boot.policy_{name}` with "policy evaluation failed".
    pub fn unusable_policy(name: &str, refstate: Option<&Value>, error: &MbPolicyError) -> Self {
        MbFailure::measured_boot(
            format!("policy_{name}"),
            json!({
                "context": "Boot attestation failed",
                "policy": name,
                "refstate": refstate.map(Value::to_string).unwrap_or_default(),
                "reason": format!("policy evaluation failed: {error}"),
            }),
        )
    }
}

/// What the measured-boot check found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MbVerdict {
    pub failures: Vec<MbFailure>,
    /// Boot aggregates (hash of PCRs 0–7, and of 0–9 when the log extends 8 and 9) for
    /// every bank the log carries, for the IMA `boot_aggregate` check.
    pub boot_aggregates: Vec<(HashAlg, Vec<u8>)>,
    /// Whether the policy itself was evaluated (not for `check_replay_only`, nor when the
    /// replay disagreed with the quote or PCRs were missing).
    pub evaluated: bool,
}

/// Check `log` (the raw `binary_bios_measurements`; empty if the agent sent none) against
/// the quote's `bank` values `quoted` and `policy`. First replays the log and compares
/// every policy PCR the quote holds (`invalid_pcr_{n}`); policy PCRs the quote lacks are
/// `missing_pcrs`; only if neither happened is the policy evaluated (`policy_{name}`).
pub fn check(
    log: &[u8],
    bank: HashAlg,
    quoted: &BTreeMap<u8, Vec<u8>>,
    policy: &PreparedMbPolicy,
) -> MbVerdict {
    run(log, bank, quoted, policy, true)
}

/// [`check`] without the policy evaluation (and its `missing_pcrs`), for quotes after the
/// first when the verifier's `measured_boot_evaluate` is `once`.
pub fn check_replay_only(
    log: &[u8],
    bank: HashAlg,
    quoted: &BTreeMap<u8, Vec<u8>>,
    policy: &PreparedMbPolicy,
) -> MbVerdict {
    run(log, bank, quoted, policy, false)
}

fn run(
    log: &[u8],
    bank: HashAlg,
    quoted: &BTreeMap<u8, Vec<u8>>,
    policy: &PreparedMbPolicy,
    evaluate: bool,
) -> MbVerdict {
    let mut verdict = MbVerdict::default();
    if log.is_empty() {
        if !policy.is_empty() {
            no_log(&mut verdict, quoted, policy, evaluate);
        }
        return verdict;
    }
    let parsed = match EventLog::parse(log) {
        Ok(parsed) => parsed,
        Err(e) => {
            tracing::warn!(error = %e, "measured boot log does not parse");
            // Upstream's id names the tool it parsed with; kept for severity rules.
            verdict.failures.push(MbFailure::measured_boot(
                "parser.tpm2_eventlog.error",
                json!({ "context": "event log could not be parsed", "data": e.to_string() }),
            ));
            return verdict;
        }
    };
    let banks = replay(&parsed);
    verdict.boot_aggregates = boot_aggregates(&banks);
    let Some(replayed) = banks.get(&bank) else {
        tracing::warn!(%bank, "measured boot log has no digests in the quoted bank");
        verdict.failures.push(MbFailure::measured_boot(
            "parser.invalid_pcrs_hashes",
            json!({ "got": Value::Null, "bank": bank.name() }),
        ));
        return verdict;
    };
    if policy.is_empty() {
        return verdict;
    }
    let zeros = vec![0u8; bank.digest_len()];
    for pcr in policy.pcrs() {
        let Some(got) = quoted.get(pcr) else { continue };
        let expected = replayed.get(&u32::from(*pcr)).unwrap_or(&zeros);
        if got != expected {
            tracing::warn!(pcr, %bank, quoted = %hex::encode(got), replayed = %hex::encode(expected),
                "quoted PCR differs from the measured boot log's replay");
            verdict.failures.push(MbFailure::measured_boot(
                format!("invalid_pcr_{pcr}"),
                json!({
                    "context": "SHA256 boot event log PCR value does not match",
                    "got": hex::encode(got),
                    "expected": hex::encode(expected),
                }),
            ));
        }
    }
    if !verdict.failures.is_empty() || !evaluate {
        return verdict;
    }
    let missing: Vec<u8> = policy
        .required_pcrs()
        .iter()
        .copied()
        .filter(|p| !quoted.contains_key(p))
        .collect();
    if !missing.is_empty() {
        verdict.failures.push(missing_pcrs(&missing));
        return verdict;
    }
    verdict.evaluated = true;
    if let Err(violation) = policy.evaluate(&parsed) {
        tracing::warn!(policy = %policy.name(), reason = %violation.reason, "boot attestation failed");
        verdict.failures.push(policy_failure(policy, violation));
    }
    verdict
}

fn missing_pcrs(missing: &[u8]) -> MbFailure {
    MbFailure::measured_boot(
        "missing_pcrs",
        json!({ "context": "PCRs are missing in quote", "data": missing }),
    )
}

fn policy_failure(policy: &PreparedMbPolicy, v: Violation) -> MbFailure {
    let name = policy.name().as_str();
    let mut context = json!({
        "context": "Boot attestation failed",
        "policy": name,
        "refstate": policy.refstate_text,
        "reason": v.reason,
    });
    if let Some(event) = v.event {
        context["event"] = json!(event);
    }
    if let Some(component) = v.component {
        context["component"] = json!(component);
    }
    MbFailure::measured_boot(format!("policy_{name}"), context)
}

/// A reference state but no log: upstream reports every quoted policy PCR as unused, and
/// cannot evaluate the policy because none of its PCRs was validated.
fn no_log(
    verdict: &mut MbVerdict,
    quoted: &BTreeMap<u8, Vec<u8>>,
    policy: &PreparedMbPolicy,
    evaluate: bool,
) {
    for pcr in policy.pcrs().iter().filter(|p| quoted.contains_key(p)) {
        verdict.failures.push(MbFailure {
            id: format!("unused_pcr_{pcr}"),
            context: json!(format!(
                "Measured Boot PCR {pcr} in policy, but no measurement list provided"
            )),
            recoverable: true,
            component: MbComponent::PcrValidation,
        });
    }
    if !evaluate {
        return;
    }
    if !policy.required_pcrs().is_empty() {
        verdict.failures.push(missing_pcrs(policy.required_pcrs()));
        return;
    }
    verdict.evaluated = true;
    let empty = EventLog {
        format: crate::LogFormat::CryptoAgile,
        spec_id: None,
        events: Vec::new(),
        startup_locality: None,
        trailing: None,
    };
    if let Err(v) = policy.evaluate(&empty) {
        verdict.failures.push(policy_failure(policy, v));
    }
}

/// Boot aggregates of a replay: for each bank, the hash of PCRs 0–7 and of PCRs 0–9
/// concatenated, each only when the log extended all of those PCRs.
pub fn boot_aggregates(banks: &PcrBanks) -> Vec<(HashAlg, Vec<u8>)> {
    let mut out = Vec::new();
    for (alg, pcrs) in banks {
        for count in [8u32, 10] {
            let values: Option<Vec<&[u8]>> = (0..count)
                .map(|i| pcrs.get(&i).map(Vec::as_slice))
                .collect();
            if let Some(values) = values {
                out.push((*alg, alg.digest_parts(&values)));
            }
        }
    }
    out
}
