//! What the pull API's handlers share ([`PullApi`]: identity, TPM, payload key, served
//! versions, settings, the key exchange), the body limit, and the API version a request
//! came in under ([`RequestVersion`]).

use std::sync::{Arc, Mutex};

use keylime_api::ApiVersion;
use keylime_tpm::{HashAlg, SignAlg};

use crate::key_exchange::KeyExchange;
use crate::payload_key::PayloadKey;
use crate::revocation::RevocationSettings;
use crate::secure_payload::PayloadSettings;
use crate::shared_tpm::SharedTpm;
use crate::tpm_setup::TpmIdentity;

/// Largest request body accepted (a `ukey` with a 1 MiB payload is ~1.4 MB of base64).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Everything the handlers share.
pub struct PullApi {
    pub agent_id: String,
    pub tpm: SharedTpm,
    pub identity: Arc<TpmIdentity>,
    pub hash_alg: HashAlg,
    pub sign_alg: SignAlg,
    pub payload_key: Arc<PayloadKey>,
    /// Served API versions, oldest first.
    pub versions: Vec<ApiVersion>,
    pub ima_ml_path: std::path::PathBuf,
    pub measuredboot_ml_path: std::path::PathBuf,
    pub payload: PayloadSettings,
    pub revocation: RevocationSettings,
    /// Whether `/keys/ukey` and `/keys/vkey` are served: over mTLS, or over plain HTTP
    /// with `enable_insecure_payload`.
    pub accepts_key_shares: bool,
    pub(crate) keys: Mutex<KeyExchange>,
    /// Serialises payload deliveries and revocation actions.
    pub(crate) delivery: tokio::sync::Mutex<()>,
}

impl PullApi {
    /// Assembles the shared state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        agent_id: String,
        tpm: SharedTpm,
        identity: Arc<TpmIdentity>,
        hash_alg: HashAlg,
        sign_alg: SignAlg,
        payload_key: Arc<PayloadKey>,
        versions: Vec<ApiVersion>,
        ima_ml_path: std::path::PathBuf,
        measuredboot_ml_path: std::path::PathBuf,
        payload: PayloadSettings,
        revocation: RevocationSettings,
        accepts_key_shares: bool,
    ) -> Self {
        Self {
            keys: Mutex::new(KeyExchange::new(agent_id.clone())),
            agent_id,
            tpm,
            identity,
            hash_alg,
            sign_alg,
            payload_key,
            versions,
            ima_ml_path,
            measuredboot_ml_path,
            payload,
            revocation,
            accepts_key_shares,
            delivery: tokio::sync::Mutex::new(()),
        }
    }

    /// The current bootstrap key K, if derived.
    pub fn bootstrap_key(&self) -> Option<keylime_payload::BootstrapKey> {
        self.keys.lock().ok().and_then(|k| k.key().cloned())
    }
}

/// The API version a request came in under, for version-dependent fields.
#[derive(Debug, Clone, Copy)]
pub(super) struct RequestVersion(pub ApiVersion);
