//! The measured-boot and IMA checks of one quote (PROTOCOL.md §5.6, §8.1, §8.4): the PCRs
//! they claim, the events they raise, and the IMA progress they carry to the next round.
//!
//! Both follow "evidence before content": the boot log is replayed and compared with the
//! quoted PCRs before the measured-boot policy is evaluated, and the IMA chunk is proved an
//! unbroken chain ending at the quoted PCR 10 before any entry is evaluated against the
//! runtime policy (`keylime_eventlog::check`, `keylime_ima::check`).
//!
//! Incremental IMA: the verifier asks for entries from `ImaState::next_entry`; an agent must
//! answer from there or from 0 (a full list, which restarts the replay). After a reboot
//! (TPM reset seen by the clock check, or a changed `boottime`) a list that does not start
//! at 0 cannot be checked: the state is reset and this round's IMA check skipped, so the
//! next round replays the new boot's list from the start (upstream does the same on a
//! `boottime` change).

use std::collections::BTreeMap;

use base64::Engine as _;
use keylime_eventlog::PreparedMbPolicy;
use keylime_ima::{ImaCheckInput, ImaState};
use keylime_tpm::HashAlg;
use serde_json::json;

use crate::clock::ClockTransition;
use crate::failure::{Component, FailureEvent, SeverityPolicy, message};
use crate::inputs::{PreparedPolicy, QuoteEvidence};
use crate::pcr_checks::{IMA_PCR, MEASURED_BOOT_PCRS, PcrClaimant, PcrClaims};
use crate::quote::QuotedPcrs;
use crate::state::AgentState;

/// What the measured-boot check leaves for the IMA check and the next state.
#[derive(Debug, Default)]
pub(crate) struct MbOutcome {
    /// Boot aggregates computed from the boot log (every bank in it).
    pub boot_aggregates: Vec<(HashAlg, Vec<u8>)>,
    /// The policy was evaluated (and passed) this round.
    pub evaluated: bool,
}

/// What the IMA check leaves for the verdict.
#[derive(Debug, Default)]
pub(crate) struct ImaOutcome {
    /// The IMA state to keep if the whole attestation passes.
    pub next_state: ImaState,
    /// Entries whose template hash and replay were processed.
    pub chain_entries: u64,
    /// Entries evaluated against the runtime policy.
    pub evaluated_entries: u64,
}

/// The quoted PCR values as bytes.
pub(crate) fn quoted_bytes(pcrs: &QuotedPcrs) -> BTreeMap<u8, Vec<u8>> {
    pcrs.values
        .iter()
        .filter_map(|(&n, hex_value)| hex::decode(hex_value).ok().map(|v| (n, v)))
        .collect()
}

fn non_empty(policy: &PreparedPolicy) -> Option<&PreparedMbPolicy> {
    policy.mb_policy.as_deref().filter(|p| !p.is_empty())
}

/// The measured-boot PCRs the policy replays (all of 0–9, 11–15 when it names none).
fn mb_pcrs(policy: &PreparedMbPolicy) -> Vec<u8> {
    if policy.pcrs().is_empty() {
        MEASURED_BOOT_PCRS.to_vec()
    } else {
        policy.pcrs().to_vec()
    }
}

/// What both checks read about one verified quote.
pub(crate) struct QuoteContext<'a> {
    pub evidence: &'a QuoteEvidence<'a>,
    pub pcrs: &'a QuotedPcrs,
    /// The quoted PCR values as bytes.
    pub quoted: &'a BTreeMap<u8, Vec<u8>>,
    pub policy: &'a PreparedPolicy,
    pub prior: &'a AgentState,
    pub sev: &'a SeverityPolicy,
}

pub(crate) fn measured_boot(
    cx: &QuoteContext<'_>,
    claims: &mut PcrClaims,
    out: &mut Vec<FailureEvent>,
) -> MbOutcome {
    let QuoteContext {
        evidence,
        pcrs,
        quoted,
        policy,
        prior,
        sev,
    } = *cx;
    let mb = non_empty(policy);
    let log = match evidence
        .mb_measurement_list
        .as_deref()
        .filter(|l| !l.is_empty())
    {
        Some(b64) => match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                out.push(sev.event(
                    Component::MeasuredBoot,
                    "parser.log",
                    message(format!("mb_measurement_list is not base64: {e}")),
                    false,
                ));
                return MbOutcome::default();
            }
        },
        None => None,
    };
    let Some(mb) = mb else {
        // No policy: the log only yields boot aggregates for IMA, which only a list read
        // from entry 0 (where `boot_aggregate` is) can use.
        let from_start = evidence.ima_measurement_list.is_some()
            && evidence.ima_measurement_list_entry.unwrap_or(0) == 0;
        let boot_aggregates = log
            .filter(|_| from_start)
            .and_then(|l| keylime_eventlog::parse(&l).ok())
            .map(|parsed| keylime_eventlog::boot_aggregates(&keylime_eventlog::replay(&parsed)))
            .unwrap_or_default();
        return MbOutcome {
            boot_aggregates,
            evaluated: false,
        };
    };
    let wanted: Vec<u8> = mb_pcrs(mb)
        .into_iter()
        .filter(|p| pcrs.contains(*p))
        .collect();
    for &p in &wanted {
        claims.claim(p, PcrClaimant::MeasuredBoot);
    }
    let Some(log) = log else {
        for p in wanted {
            out.push(sev.event(
                Component::PcrValidation,
                &format!("unused_pcr_{p}"),
                message(format!(
                    "Measured Boot PCR {p} in policy, but no measurement list provided"
                )),
                true,
            ));
        }
        return MbOutcome::default();
    };
    // With `measured_boot_evaluate = once`, after the first passing evaluation only the
    // replay is compared with the quote; the policy verdict is not repeated.
    let once_done = !policy.mb_evaluate_always && prior.mb_evaluated;
    let verdict = if once_done {
        keylime_eventlog::check_replay_only(&log, pcrs.bank, quoted, mb)
    } else {
        keylime_eventlog::check(&log, pcrs.bank, quoted, mb)
    };
    let before = out.len();
    for f in verdict.failures {
        let component = match f.component {
            keylime_eventlog::MbComponent::MeasuredBoot => Component::MeasuredBoot,
            keylime_eventlog::MbComponent::PcrValidation => Component::PcrValidation,
        };
        out.push(sev.event(component, &f.id, f.context, f.recoverable));
    }
    MbOutcome {
        boot_aggregates: verdict.boot_aggregates,
        evaluated: out.len() == before,
    }
}

pub(crate) fn ima(
    cx: &QuoteContext<'_>,
    transition: Option<&ClockTransition>,
    boot_aggregates: &[(HashAlg, Vec<u8>)],
    claims: &mut PcrClaims,
    out: &mut Vec<FailureEvent>,
) -> ImaOutcome {
    let QuoteContext {
        evidence,
        pcrs,
        quoted,
        policy,
        prior,
        sev,
    } = *cx;
    let keep = || ImaOutcome {
        next_state: prior.ima.clone(),
        ..ImaOutcome::default()
    };
    let Some(pcr10) = quoted.get(&IMA_PCR) else {
        return keep();
    };
    claims.claim(IMA_PCR, PcrClaimant::Ima);
    let Some(list) = evidence.ima_measurement_list.as_deref() else {
        out.push(sev.event(
            Component::PcrValidation,
            "unused_pcr_10",
            message("IMA PCR in policy, but no measurement list provided"),
            true,
        ));
        return keep();
    };
    let first = evidence.ima_measurement_list_entry.unwrap_or(0);
    let boottime = evidence.boottime.unwrap_or(0);
    let mut prior_ima = prior.ima.clone();
    if first == 0 {
        prior_ima = ImaState::default();
    } else if first != prior.ima.next_entry {
        out.push(sev.event(
            Component::QuoteValidation,
            "invalid_ima_entry_nb",
            json!({
                "message": "Agent did not respond with requested next IMA measurement list entry",
                "got": first,
                "expected": prior.ima.next_entry,
            }),
            false,
        ));
        return ImaOutcome::default();
    } else if matches!(transition, Some(ClockTransition::Rebooted { .. }))
        || (prior.ima.boottime != 0 && boottime != prior.ima.boottime)
    {
        tracing::info!(
            first,
            "agent rebooted: IMA replay restarts from entry 0 next round"
        );
        return ImaOutcome {
            next_state: ImaState {
                boottime,
                ..ImaState::default()
            },
            ..ImaOutcome::default()
        };
    }
    prior_ima.boottime = boottime;
    let input = ImaCheckInput {
        list,
        first_entry: first,
        bank: pcrs.bank,
        quoted_pcr10: pcr10,
        quoted_pcrs: quoted,
        extra_boot_aggregates: boot_aggregates,
        policy: policy.runtime_policy.as_deref(),
        ignore_tomtou_errors: policy.ignore_tomtou_errors,
    };
    let verdict = keylime_ima::check(&input, &prior_ima);
    for f in verdict.failures {
        out.push(sev.event(Component::Ima, &f.id, f.context, f.recoverable));
    }
    let mut next_state = verdict.next_state;
    next_state.boottime = boottime;
    ImaOutcome {
        next_state,
        chain_entries: verdict.chain_entries,
        evaluated_entries: verdict.evaluated_entries,
    }
}
