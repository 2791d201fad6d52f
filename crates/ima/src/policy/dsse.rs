//! A runtime policy as delivered: plain JSON, or a DSSE envelope (`payload`, `payloadType`,
//! `signatures`) whose base64 payload is the policy. Signature verification belongs to the
//! DSSE verifier; this module only recognizes and unwraps the envelope.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{PolicyError, RuntimePolicy};

/// One DSSE signature entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsseSignature {
    #[serde(default)]
    pub keyid: String,
    /// Base64 signature over the DSSE pre-authentication encoding.
    pub sig: String,
}

/// A DSSE envelope as upstream's `keylime-policy sign` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsseEnvelope {
    /// Base64 of the payload bytes.
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<DsseSignature>,
}

impl DsseEnvelope {
    /// The decoded payload bytes.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, PolicyError> {
        base64::engine::general_purpose::STANDARD
            .decode(self.payload.as_bytes())
            .map_err(|e| PolicyError::Dsse(format!("payload is not base64: {e}")))
    }
}

/// A loaded policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyDocument {
    Plain(RuntimePolicy),
    /// A signed policy; the signatures are NOT verified here.
    Dsse {
        envelope: DsseEnvelope,
        policy: RuntimePolicy,
    },
}

impl PolicyDocument {
    /// Loads plain or DSSE-wrapped JSON (detected by a `payload` member), validating the
    /// policy strictly ([`RuntimePolicy::from_json`]) or leniently.
    pub fn parse(bytes: &[u8], max_len: usize, strict: bool) -> Result<Self, PolicyError> {
        super::check_len(bytes, max_len)?;
        let load = |b: &[u8]| {
            if strict {
                RuntimePolicy::from_json(b, max_len)
            } else {
                RuntimePolicy::from_json_lenient(b, max_len)
            }
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| PolicyError::Json(e.to_string()))?;
        if value.get("payload").is_none() {
            return load(bytes).map(PolicyDocument::Plain);
        }
        let envelope: DsseEnvelope =
            serde_json::from_value(value).map_err(|e| PolicyError::Dsse(e.to_string()))?;
        let payload = envelope.payload_bytes()?;
        let policy = load(&payload)?;
        Ok(PolicyDocument::Dsse { envelope, policy })
    }

    /// The policy, signed or not.
    pub fn policy(&self) -> &RuntimePolicy {
        match self {
            PolicyDocument::Plain(p) | PolicyDocument::Dsse { policy: p, .. } => p,
        }
    }
}
