//! The engine's inputs besides the prior state: what the agent sent with one quote
//! ([`QuoteEvidence`]), the per-agent policy as stored ([`AgentPolicy`]) and as prepared
//! once for repeated use ([`PreparedPolicy`]: the AK parsed, the runtime and measured-boot
//! policies shared). All serde types or built from them, so a round replays offline.

use std::borrow::Cow;
use std::sync::Arc;

use keylime_eventlog::PreparedMbPolicy;
use keylime_ima::PreparedRuntimePolicy;
use serde::{Deserialize, Serialize};

use crate::ak::{AkError, PreparedAk};
use crate::algorithms::AcceptedAlgorithms;
use crate::failure::SeverityPolicy;
use crate::tpm_policy::TpmPolicy;

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
