//! An enrolled agent made ready for polling: its add-agent request parsed once, the
//! engine policy prepared (AK parsed once), the quote mask, the agent's URL and its mTLS
//! certificate. Also used by the add-agent handler to refuse bad input before storing.

use std::sync::Arc;

use keylime_api::verifier::AddAgentRequest;
use keylime_attestation::{
    AcceptedAlgorithms, AgentPolicy, PreparedPolicy, SeverityPolicy, TpmPolicy,
};
use keylime_pki::CertificateDer;

use crate::outbound::contact::{AgentContact, ContactError, base_url};

/// Why an add-agent request cannot be polled; the message is the 400 reason.
#[derive(Debug, thiserror::Error)]
pub enum AgentSetupError {
    #[error("ak_tpm is not valid base64: {0}")]
    AkEncoding(String),
    #[error("ak_tpm is not a usable attestation key: {0}")]
    Ak(String),
    #[error("tpm_policy is invalid: {0}")]
    TpmPolicy(String),
    #[error("tpm_policy has no \"mask\"")]
    NoMask,
    #[error(transparent)]
    Contact(#[from] ContactError),
    #[error("v must be base64 of 32 bytes")]
    BadV,
}

/// A polled agent's fixed inputs. No `Debug`: the request carries the revocation key.
pub struct PreparedAgent {
    pub request: AddAgentRequest,
    pub policy: Arc<PreparedPolicy>,
    /// `tpm_policy["mask"]`, sent verbatim.
    pub mask: String,
    pub mtls_cert: Option<CertificateDer<'static>>,
    pub ip: String,
    pub port: u16,
    /// Agent API version used in paths, e.g. `2.6`.
    pub api_version: String,
}

impl PreparedAgent {
    /// Check and prepare `request` for polling.
    pub fn new(
        request: AddAgentRequest,
        severity: Arc<SeverityPolicy>,
        require_mtls: bool,
    ) -> Result<Self, AgentSetupError> {
        let ak_tpm = keylime_api::decode_binary(&request.ak_tpm)
            .map_err(|e| AgentSetupError::AkEncoding(e.to_string()))?;
        let tpm_policy = TpmPolicy::from_json_str(&request.tpm_policy)
            .map_err(|e| AgentSetupError::TpmPolicy(e.to_string()))?;
        let raw: serde_json::Value = serde_json::from_str(&request.tpm_policy)
            .map_err(|e| AgentSetupError::TpmPolicy(e.to_string()))?;
        let mask = match raw.get("mask") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
            Some(serde_json::Value::Number(n)) => format!("{:#x}", n.as_u64().unwrap_or(0)),
            _ => return Err(AgentSetupError::NoMask),
        };
        let policy = AgentPolicy {
            ak_tpm,
            tpm_policy,
            accept: AcceptedAlgorithms {
                hash: request.accept_tpm_hash_algs.clone(),
                encryption: request.accept_tpm_encryption_algs.clone(),
                signing: request.accept_tpm_signing_algs.clone(),
            },
            check_pcr16: true,
            check_clock: true,
        };
        let policy = PreparedPolicy::new(&policy, severity)
            .map_err(|e| AgentSetupError::Ak(e.to_string()))?;
        let contact = AgentContact::from_request(&request, require_mtls)?;
        // V is delivered after a good quote (PROVIDE_V, §4.6).
        if let Some(text) = request.v.as_deref().filter(|v| !v.is_empty())
            && !keylime_api::decode_binary(text).is_ok_and(|b| b.len() == 32)
        {
            return Err(AgentSetupError::BadV);
        }
        Ok(PreparedAgent {
            request,
            policy: Arc::new(policy),
            mask,
            mtls_cert: contact.mtls_cert,
            ip: contact.ip,
            port: contact.port,
            api_version: contact.api_version,
        })
    }

    /// `https://ip:port` (or `http://` when the agent has no mTLS certificate).
    pub fn base_url(&self) -> String {
        base_url(self.mtls_cert.is_some(), &self.ip, self.port)
    }

    /// The V share, when the tenant gave one (checked to be 32 bytes).
    pub fn v(&self) -> Option<Vec<u8>> {
        self.request
            .v
            .as_deref()
            .filter(|v| !v.is_empty())
            .and_then(|v| keylime_api::decode_binary(v).ok())
    }
}
