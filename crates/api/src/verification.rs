//! Wire types of the verifier's public verification routes (PROTOCOL.md §5.9, §5.10):
//! the `/verify/evidence` request and verdict, and the `/verify/identity` verdict.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Body of `POST /v2.x/verify/evidence`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceRequest {
    /// `"tpm"` (`"tee"` is refused as unsupported).
    #[serde(rename = "type")]
    pub evidence_type: String,
    /// The evidence and the policies to check it against.
    pub data: EvidenceData,
}

/// `data` of an [`EvidenceRequest`]: the five evidence fields are required, and at least
/// one of the three policies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceData {
    /// The quote string (`r…` with TPMS_ATTEST, signature and PCR blob).
    pub quote: String,
    /// The nonce the quote must carry.
    pub nonce: String,
    /// The PCR bank, e.g. `sha256`.
    pub hash_alg: String,
    /// b64 TPM2B_PUBLIC of the EK.
    pub tpm_ek: String,
    /// b64 TPM2B_PUBLIC of the AK.
    pub tpm_ak: String,
    /// PCR policy JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm_policy: Option<String>,
    /// Runtime policy JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_policy: Option<String>,
    /// Measured-boot reference state JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mb_policy: Option<String>,
    /// The IMA measurement list (ASCII).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ima_measurement_list: Option<String>,
    /// b64 UEFI event log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mb_log: Option<String>,
}

/// `results` of `/verify/evidence` (200 with a verdict, 400 for unusable input).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceVerdict {
    /// Whether every check passed.
    pub valid: bool,
    /// The request's `data` echoed when valid, `{}` otherwise.
    pub claims: Map<String, Value>,
    /// Why not, one entry per failure.
    pub failures: Vec<EvidenceFailure>,
}

/// One failure of an [`EvidenceVerdict`]: upstream's event id and its context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceFailure {
    /// The event id, e.g. `default.missing_param` or `quote_validation.…`.
    #[serde(rename = "type")]
    pub event_id: String,
    /// What was wrong.
    pub context: Value,
}

/// `results` of `GET /v2.x/verify/identity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IdentityVerdict {
    /// `1` when the quote is good, `0` otherwise (upstream's integers).
    #[schema(minimum = 0, maximum = 1)]
    pub valid: u8,
    /// Why not, when `valid` is 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
