//! The verifier's IMA check: one received chunk of the ASCII measurement list, the quote's
//! PCR 10 (and boot PCRs), the prepared runtime policy and the prior [`ImaState`] in; the
//! failure events and the next state out (PROTOCOL.md §5.6, §8.1).
//!
//! The check proves the data before it judges the content: every line must parse, every
//! template hash must cover its fields, and the replay from the stored running value must
//! reach the quoted PCR 10. A chunk that fails there (`parser.entry`, `validation.ima_hash`,
//! `pcr_mismatch`) yields no policy event and learns no key, so a broken chain and a policy
//! violation are always different events. Every entry of a proven chunk is evaluated,
//! including those after the quoted position (they will be requested again, as the quote
//! lags the log), learning keyring keys as it goes. To parse each entry once, evaluation
//! runs alongside the chain walk with its events held back until the chain is proven.
//!
//! Like upstream, any failure resets the state: the next request starts at entry 0.
//! The check does no I/O and reads no clock; it allocates nothing per `ima`/`ima-ng` entry.

mod boot_aggregate;
mod chain;
mod evaluate;
mod failures;
mod keys;
mod state;

use std::collections::BTreeMap;

use keylime_tpm::HashAlg;

use crate::prepared::PreparedRuntimePolicy;
use crate::replay::{ChainVerifier, Replay};
use chain::{ChainOutcome, new_chain, verify_chain};
use evaluate::Evaluator;
use failures::{FailureSink, ids, message};

pub use boot_aggregate::{BOOT_AGGREGATE, boot_aggregate};
pub use failures::{ImaFailure, MAX_EVENTS_PER_ID, ids as failure_ids};
pub use state::{ImaState, LearnedKey};

/// Everything one round of the IMA check needs besides the prior state.
#[derive(Debug, Clone, Copy)]
pub struct ImaCheckInput<'a> {
    /// The ASCII list chunk as received (invalid UTF-8 already replaced by the caller).
    pub list: &'a str,
    /// The agent's `ima_measurement_list_entry`: the absolute index of the chunk's first
    /// entry (0 = the whole list).
    pub first_entry: u64,
    /// The quote's PCR bank.
    pub bank: HashAlg,
    /// The quoted PCR 10.
    pub quoted_pcr10: &'a [u8],
    /// Every quoted PCR of the bank (PCRs 0–9 for the boot aggregate, when quoted).
    pub quoted_pcrs: &'a BTreeMap<u8, Vec<u8>>,
    /// Boot aggregates computed from the measured-boot log (may be empty).
    pub extra_boot_aggregates: &'a [(HashAlg, Vec<u8>)],
    /// The runtime policy; `None` checks the chain only.
    pub policy: Option<&'a PreparedRuntimePolicy>,
    /// Upstream's `ignore_tomtou_errors`, with its inverted meaning (PROTOCOL.md §11 Q3):
    /// `true` *raises* `validation.tomtou` for each violation, `false` accepts them silently.
    pub ignore_tomtou_errors: bool,
}

/// The outcome of one round.
#[derive(Debug, Clone, PartialEq)]
pub struct ImaVerdict {
    /// Failure events in the order found; empty when the chunk passed.
    pub failures: Vec<ImaFailure>,
    /// Events beyond [`MAX_EVENTS_PER_ID`] of one id, counted but not kept.
    pub suppressed: u64,
    /// The state for the next round (the default state after any failure).
    pub next_state: ImaState,
    /// Entries whose template hash was checked and which were replayed.
    pub chain_entries: u64,
    /// Entries evaluated against the policy (0 unless the chain was proven).
    pub evaluated_entries: u64,
}

impl ImaVerdict {
    /// True when no failure was found.
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.suppressed == 0
    }
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// Positions the replay: from zeros at entry 0, or from the stored value when the chunk
/// continues `prior`.
fn start_replay(input: &ImaCheckInput<'_>, prior: &ImaState) -> Result<(Replay, bool), String> {
    let bank = input.bank;
    if input.first_entry == 0 {
        return Replay::new(bank)
            .map(|r| (r, false))
            .map_err(|e| e.to_string());
    }
    if !prior.can_resume(input.first_entry, bank) {
        return Err(format!(
            "IMA measurement list starts at entry {} but the stored state is at entry {} ({} bank {}); it cannot be replayed",
            input.first_entry,
            prior.next_entry,
            if prior.pcr10.is_some() {
                "with"
            } else {
                "without"
            },
            prior.bank.as_deref().unwrap_or("none"),
        ));
    }
    let value = prior
        .pcr10
        .as_deref()
        .and_then(hex_decode)
        .ok_or_else(|| "the stored PCR 10 value is not hex".to_owned())?;
    Replay::resume(bank, &value, input.first_entry)
        .map(|r| (r, true))
        .map_err(|e| e.to_string())
}

fn pcr_hex(v: &[u8]) -> String {
    v.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sets up pass 1: the chain verifier at its start, watching for the quoted value.
fn chain_for(input: &ImaCheckInput<'_>, prior: &ImaState) -> Result<(ChainVerifier, bool), String> {
    let (replay, resumed) = start_replay(input, prior)?;
    let log_alg = input.policy.map_or(HashAlg::Sha1, |p| p.log_hash_alg());
    let mut chain = new_chain(log_alg, replay).map_err(|e| e.to_string())?;
    chain
        .expect_quoted(input.bank, input.quoted_pcr10)
        .map_err(|e| e.to_string())?;
    Ok((chain, resumed))
}

/// Runs one round of the IMA check (see the module docs).
///
/// # Example
///
/// ```
/// use std::collections::BTreeMap;
/// use keylime_ima::policy::RuntimePolicy;
/// use keylime_ima::{HashAlg, ImaCheckInput, ImaState, PreparedRuntimePolicy, Replay};
/// use keylime_ima::{check, parse_log};
///
/// let list = "10 919d666632e75b1895ee4a6653b8e6c20842bc66 ima-ng \
///     sha256:fec395eacfbd4d9bfd3ddce68ccf0792159494ff7aae89c556f7f2796046f871 boot_aggregate\n";
/// // the value a TPM's sha256 PCR 10 holds after this entry
/// let mut replay = Replay::new(HashAlg::Sha256)?;
/// replay.feed(parse_log(list))?;
///
/// let mut policy = RuntimePolicy::empty();
/// policy.digests.insert(
///     "boot_aggregate".into(),
///     vec!["fec395eacfbd4d9bfd3ddce68ccf0792159494ff7aae89c556f7f2796046f871".into()],
/// );
/// let policy = PreparedRuntimePolicy::prepare(&policy)?;
/// let pcrs = BTreeMap::new();
/// let input = ImaCheckInput {
///     list,
///     first_entry: 0,
///     bank: HashAlg::Sha256,
///     quoted_pcr10: replay.value().as_slice(),
///     quoted_pcrs: &pcrs,
///     extra_boot_aggregates: &[],
///     policy: Some(&policy),
///     ignore_tomtou_errors: false,
/// };
/// let verdict = check(&input, &ImaState::default());
/// assert!(verdict.passed());
/// assert_eq!(verdict.next_state.next_entry, 1);
///
/// // the next round asks for entry 1; an empty answer with an unchanged PCR 10 passes
/// let again = ImaCheckInput { list: "", first_entry: 1, ..input };
/// assert!(check(&again, &verdict.next_state).passed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check(input: &ImaCheckInput<'_>, prior: &ImaState) -> ImaVerdict {
    let mut sink = FailureSink::default();
    let (mut chain, resumed) = match chain_for(input, prior) {
        Ok(x) => x,
        Err(reason) => {
            tracing::warn!(%reason, "IMA list cannot be replayed");
            sink.push(ids::PCR_MISMATCH, || {
                serde_json::json!({
                    "message": format!(
                        "IMA measurement list does not match TPM PCR {}",
                        pcr_hex(input.quoted_pcr10)
                    ),
                    "reason": reason,
                })
            });
            return finish(sink, ImaState::default(), 0, 0);
        }
    };

    let prior_keys: &[LearnedKey] = if resumed { &prior.learned_keys } else { &[] };
    let mut evaluator = input.policy.map(|policy| {
        let boot = boot_aggregate::BootAggregates::new(
            input.bank,
            input.quoted_pcrs,
            input.extra_boot_aggregates,
        );
        Evaluator::new(
            policy,
            boot,
            keys::TrustedKeys::new(policy.verification_keys(), prior_keys),
        )
    });
    let mut policy_sink = FailureSink::default();
    let outcome = verify_chain(
        input.list,
        &mut chain,
        input.ignore_tomtou_errors,
        &mut sink,
        evaluator.as_mut().map(|e| (e, &mut policy_sink)),
    );
    let ChainOutcome {
        entries,
        extended,
        broken,
        matched,
    } = outcome;
    let Some(matched) = matched else {
        tracing::warn!(
            entries,
            "IMA measurement list does not match the quoted PCR 10"
        );
        sink.push(ids::PCR_MISMATCH, || {
            message(format!(
                "IMA measurement list does not match TPM PCR {}",
                pcr_hex(input.quoted_pcr10)
            ))
        });
        return finish(sink, ImaState::default(), extended, 0);
    };

    // entries of this chunk the quote covers (upstream's pcr_match_line)
    let covered = matched.next_entry.saturating_sub(input.first_entry);
    let (learned_keys, evaluated) = match evaluator {
        Some(e) if !broken => {
            let evaluated = e.evaluated;
            sink.append(policy_sink);
            (e.keys.into_learned(covered), evaluated)
        }
        _ => (prior_keys.to_vec(), 0),
    };

    let prior_lag = if resumed { prior.lag } else { 0 };
    if covered != entries && prior_lag > 0 && covered < prior_lag {
        tracing::warn!(
            covered,
            entries,
            prior_lag,
            "PCR quote did not catch up with the log"
        );
        sink.push(ids::QUOTE_PROGRESS, || {
            message("PCR quote did not make progress to catch up with log".into())
        });
    }

    let lag = entries - covered.min(entries);
    let value = matched
        .values
        .iter()
        .find(|(b, _)| *b == input.bank)
        .map(|(_, v)| v.to_hex());
    let next = ImaState {
        next_entry: matched.next_entry,
        pcr10: value,
        bank: Some(input.bank.name().to_owned()),
        boottime: prior.boottime,
        lagging: lag > 0,
        lag,
        learned_keys,
    };
    finish(sink, next, extended, evaluated)
}

fn finish(sink: FailureSink, next: ImaState, chain_entries: u64, evaluated: u64) -> ImaVerdict {
    let failed = !sink.is_empty();
    ImaVerdict {
        next_state: if failed { ImaState::default() } else { next },
        failures: sink.list,
        suppressed: sink.suppressed,
        chain_entries,
        evaluated_entries: evaluated,
    }
}
