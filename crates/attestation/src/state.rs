//! Per-agent attestation state carried from one attestation to the next.
//!
//! The verifier persists it (serde) and hands it back on the next quote; `keylime_attest`
//! replays stored evidence against stored state. The engine never mutates its input state:
//! it returns the next one. On a failed attestation the next state keeps the prior clock,
//! count and key (upstream persists `tpm_clockinfo`, `attestation_count` and `public_key`
//! only after a successful attestation), so a bad quote cannot move the reference point.

use serde::{Deserialize, Serialize};

use crate::clock::{ClockTransition, TpmClockInfo};

/// What the engine remembers about an agent between attestations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentState {
    /// Clock of the last accepted quote (upstream's `tpm_clockinfo`); `None` before the
    /// first one.
    pub tpm_clockinfo: Option<TpmClockInfo>,
    /// TPM Resets (reboots) seen between accepted quotes since enrolment.
    pub reboots_seen: u64,
    /// TPM Restarts/Resumes (same boot) seen between accepted quotes since enrolment.
    pub resumes_seen: u64,
    /// Successful attestations (upstream's `attestation_count`).
    pub attestation_count: u64,
    /// The payload public key (PEM text) of the last accepted quote (upstream's
    /// `public_key`); used for the PCR 16 check when a quote omits `pubkey` (`partial=1`).
    pub pubkey_pem: Option<String>,
    /// Algorithms the agent last reported and the policy accepted (status `hash_alg`,
    /// `enc_alg`, `sign_alg`; upstream records them once accepted, even if a later check
    /// of the same quote fails).
    pub hash_alg: Option<String>,
    pub enc_alg: Option<String>,
    pub sign_alg: Option<String>,
    /// Incremental IMA progress: next entry to request, PCR 10 there, boot time, keys
    /// learned this boot.
    pub ima: keylime_ima::ImaState,
    /// The measured-boot policy was evaluated and passed (`measured_boot_evaluate = once`).
    pub mb_evaluated: bool,
}

impl AgentState {
    /// The state after an accepted quote with this clock transition.
    pub(crate) fn accept(
        &mut self,
        clock: TpmClockInfo,
        transition: Option<ClockTransition>,
        pubkey: Option<&str>,
    ) {
        match transition {
            Some(ClockTransition::Rebooted { .. }) => self.reboots_seen += 1,
            Some(ClockTransition::Resumed { .. }) => self.resumes_seen += 1,
            _ => {}
        }
        self.tpm_clockinfo = Some(clock);
        self.attestation_count += 1;
        if let Some(k) = pubkey {
            self.pubkey_pem = Some(k.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_missing_fields() {
        let s = AgentState {
            tpm_clockinfo: Some(TpmClockInfo {
                clock: 5,
                reset_count: 1,
                restart_count: 0,
                safe: 1,
            }),
            attestation_count: 3,
            pubkey_pem: Some("-----BEGIN PUBLIC KEY-----\n".into()),
            ..AgentState::default()
        };
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<AgentState>(&text).unwrap(), s);
        let old: AgentState = serde_json::from_str(r#"{"attestation_count": 2}"#).unwrap();
        assert_eq!(old.attestation_count, 2);
        assert_eq!(old.tpm_clockinfo, None);
    }
}
