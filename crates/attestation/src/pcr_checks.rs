//! Policy checks on the PCR values of a verified quote (PROTOCOL.md §5.6, upstream
//! `Tpm.check_pcrs`), and the seam where the IMA and measured-boot checkers plug in.
//!
//! Each quoted PCR is validated by exactly one check. The [`EvidenceCheck`]s run first, in
//! order, and *claim* the PCRs they validate in a [`PcrClaims`] set; the static
//! `tpm_policy` then checks every quoted PCR nobody claimed:
//!
//! * [`EvidenceCheck::DataBinding`] (pull mode) claims PCR 16 and requires
//!   `PCR16 = H(0…0 ‖ H(pubkey PEM text))` (§4.6) → `pcr_validation.invalid_pcr_16`, or
//!   `pcr_validation.missing_pcr_16` when PCR 16 was not quoted.
//! * The measured-boot check (`crate::evidence`) claims the MB policy's PCRs ∩ quoted when a
//!   non-empty MB policy is set; the IMA check claims PCR 10 whenever it is quoted (as
//!   upstream does, runtime policy or not), replaying it from the list
//!   (`pcr_validation.unused_pcr_10` when there is no list).
//! * `tpm_policy`: an unclaimed quoted PCR named by the policy must hold one of its values
//!   (`pcr_validation.invalid_pcr_{n}`); an unclaimed quoted PCR the policy does not name
//!   is ignored (upstream logs "not found in tpm_policy, skipping" — `unused_pcr_{n}` is
//!   only raised by the IMA/MB checks for PCRs quoted without their log); policy PCRs
//!   that were not quoted → one `pcr_validation.missing_pcrs` listing them.
//!
//! All these events are recoverable, as upstream's.

use keylime_tpm::HashAlg;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::failure::{Component, FailureEvent, SeverityPolicy};
use crate::quote::QuotedPcrs;
use crate::tpm_policy::TpmPolicy;

/// PCR that binds the agent's payload key (`config.TPM_DATA_PCR`).
pub const DATA_PCR: u8 = 16;
/// PCR that IMA extends (`config.IMA_PCR`).
pub const IMA_PCR: u8 = 10;
/// PCRs a measured-boot policy may replay (`config.MEASUREDBOOT_PCRS`).
pub const MEASURED_BOOT_PCRS: [u8; 15] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15];

/// Which check owns a PCR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcrClaimant {
    DataBinding,
    Ima,
    MeasuredBoot,
}

/// The PCRs claimed by evidence checks, so `tpm_policy` leaves them alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PcrClaims {
    owners: [Option<PcrClaimant>; 32],
}

impl PcrClaims {
    /// Claim `pcr` for `who`. The first claim wins; returns whether this one did.
    pub fn claim(&mut self, pcr: u8, who: PcrClaimant) -> bool {
        match self.owners.get_mut(usize::from(pcr)) {
            Some(slot @ None) => {
                *slot = Some(who);
                true
            }
            _ => false,
        }
    }

    pub fn owner(&self, pcr: u8) -> Option<PcrClaimant> {
        self.owners.get(usize::from(pcr)).copied().flatten()
    }

    pub fn is_claimed(&self, pcr: u8) -> bool {
        self.owner(pcr).is_some()
    }
}

/// A check that validates some PCRs from other evidence (see the module docs; the IMA and
/// measured-boot checks live in `crate::evidence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceCheck {
    DataBinding,
}

/// What the PCR checks read.
pub struct PcrCheckInput<'a> {
    pub pcrs: &'a QuotedPcrs,
    /// The payload key PEM for the data binding (evidence's, or the one cached in state).
    pub pubkey_pem: Option<&'a str>,
    pub tpm_policy: &'a TpmPolicy,
    pub severity: &'a SeverityPolicy,
}

/// `H(0…0 ‖ H(data))` in `bank`: a resettable PCR extended once with `H(data)`.
pub fn data_pcr_value(bank: HashAlg, data: &[u8]) -> Vec<u8> {
    let zeros = vec![0u8; bank.digest_len()];
    bank.digest_parts(&[&zeros, &bank.digest(data)])
}

impl EvidenceCheck {
    /// Run this check: claim its PCRs and push its events.
    pub fn run(
        self,
        input: &PcrCheckInput<'_>,
        claims: &mut PcrClaims,
        out: &mut Vec<FailureEvent>,
    ) {
        let ev = |name: &str, ctx| {
            input
                .severity
                .event(Component::PcrValidation, name, ctx, true)
        };
        match self {
            EvidenceCheck::DataBinding => {
                let Some(got) = input.pcrs.hex(DATA_PCR) else {
                    out.push(ev(
                        "missing_pcr_16",
                        crate::failure::message(format!(
                            "Data PCR {DATA_PCR} is missing in quote, but is required"
                        )),
                    ));
                    return;
                };
                claims.claim(DATA_PCR, PcrClaimant::DataBinding);
                let pem = input.pubkey_pem.unwrap_or_default();
                let expected = hex::encode(data_pcr_value(input.pcrs.bank, pem.as_bytes()));
                if got != expected {
                    out.push(ev(
                        "invalid_pcr_16",
                        json!({ "got": got, "expected": expected }),
                    ));
                }
            }
        }
    }
}

/// Check every unclaimed quoted PCR against `tpm_policy`, then report policy PCRs that
/// were not quoted.
pub fn check_tpm_policy(
    input: &PcrCheckInput<'_>,
    claims: &PcrClaims,
    out: &mut Vec<FailureEvent>,
) {
    for (&pcr, got) in &input.pcrs.values {
        if claims.is_claimed(pcr) {
            continue;
        }
        match input.tpm_policy.allows(pcr, got) {
            None => tracing::debug!(pcr, "quoted PCR not in tpm_policy, skipping"),
            Some(true) => {}
            Some(false) => out.push(input.severity.event(
                Component::PcrValidation,
                &format!("invalid_pcr_{pcr}"),
                json!({
                    "context": "PCR value is not in allowlist",
                    "got": got,
                    "expected": input.tpm_policy.accepted(pcr).unwrap_or_default(),
                }),
                true,
            )),
        }
    }
    let missing: Vec<u8> = input
        .tpm_policy
        .pcrs()
        .map(|(p, _)| p)
        .filter(|p| !input.pcrs.contains(*p))
        .collect();
    if !missing.is_empty() {
        out.push(input.severity.event(
            Component::PcrValidation,
            "missing_pcrs",
            json!({ "context": "PCRs are missing in quote", "data": missing }),
            true,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_first_wins() {
        let mut c = PcrClaims::default();
        assert!(c.claim(10, PcrClaimant::Ima));
        assert!(!c.claim(10, PcrClaimant::MeasuredBoot));
        assert_eq!(c.owner(10), Some(PcrClaimant::Ima));
        assert!(!c.is_claimed(9));
        assert!(!c.claim(200, PcrClaimant::Ima));
    }

    #[test]
    fn data_pcr_matches_upstream_sim_extend() {
        // sim_extend("abc", sha256) = sha256(0^32 || sha256("abc"))
        let v = data_pcr_value(HashAlg::Sha256, b"abc");
        let manual = HashAlg::Sha256.digest_parts(&[&[0u8; 32], &HashAlg::Sha256.digest(b"abc")]);
        assert_eq!(v, manual);
        assert_eq!(data_pcr_value(HashAlg::Sha1, b"abc").len(), 20);
    }
}
