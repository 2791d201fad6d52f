//! TLS material of the agent: its own mTLS server certificate (sent to the registrar as
//! `mtls_cert`, later served by the pull API) and the client configuration used to reach
//! the registrar over HTTPS.
//!
//! Certificate generation and rustls configs come from `keylime-pki`; this module only
//! decides which files and which trust anchors apply.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Value of `mtls_cert` when mTLS is off: upstream's tenant treats a missing/null
/// `mtls_cert` as an API 1.0 agent (PROTOCOL.md §11 Q19), so we say so explicitly.
pub const MTLS_DISABLED: &str = "disabled";

/// Why TLS material could not be prepared.
#[derive(Debug, Error)]
pub enum MtlsError {
    #[error("cannot load or create the agent server certificate {cert} / key {key}: {source}")]
    ServerCert {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: Box<keylime_pki::PkiError>,
    },
    #[error("cannot read registrar_tls_ca_cert {path}: {source}")]
    RegistrarCa {
        path: PathBuf,
        #[source]
        source: Box<keylime_pki::PkiError>,
    },
    #[error("cannot build the TLS client configuration for the registrar: {0}")]
    ClientConfig(#[source] Box<keylime_pki::PkiError>),
}

/// The agent's server certificate and key, PEM.
#[derive(Clone)]
pub struct ServerIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("ServerIdentity")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// Loads the agent's server certificate, or creates a self-signed ECC P-256 one with
/// CN = `agent_id` and the contact address as SAN.
pub fn load_or_create_server_identity(
    cert: &Path,
    key: &Path,
    agent_id: &str,
    contact_ip: &str,
) -> Result<ServerIdentity, MtlsError> {
    let ips = vec![contact_ip.to_string()];
    keylime_pki::load_or_create_agent_cert(cert, key, agent_id, &ips)
        .map(|(cert_pem, key_pem)| ServerIdentity { cert_pem, key_pem })
        .map_err(|source| MtlsError::ServerCert {
            cert: cert.into(),
            key: key.into(),
            source: Box::new(source),
        })
}

/// rustls client config trusting the CA(s) in `ca_path` (chain only, host name ignored,
/// as upstream's clients), without a client certificate.
pub fn registrar_client_config(ca_path: &Path) -> Result<rustls::ClientConfig, MtlsError> {
    let cas = keylime_pki::load_certs(ca_path).map_err(|source| MtlsError::RegistrarCa {
        path: ca_path.into(),
        source: Box::new(source),
    })?;
    let config =
        keylime_pki::client_config(cas, None).map_err(|e| MtlsError::ClientConfig(Box::new(e)))?;
    Ok(std::sync::Arc::unwrap_or_clone(config))
}
