//! The HTTPS listener's TLS material: generate (once) or load the CA, server certificate
//! and key, and build a rustls server config that asks for an optional client certificate
//! chaining to `trusted_client_ca` (PROTOCOL.md §0.6, §9.3–§9.4).

use std::path::PathBuf;

use anyhow::Context as _;
use keylime_pki::ClientAuth;
use tokio_rustls::TlsAcceptor;

use crate::settings::{RegistrarSettings, TlsSetup};

/// A ready TLS acceptor and the directory its material lives in.
pub struct PreparedTls {
    /// Accepts TLS connections.
    pub acceptor: TlsAcceptor,
    /// The TLS directory.
    pub dir: PathBuf,
}

/// Generate or load the TLS material named by `settings.tls`.
pub fn prepare(settings: &RegistrarSettings) -> anyhow::Result<PreparedTls> {
    let (dir, server_cert, server_key, client_cas) = match &settings.tls {
        TlsSetup::Generate { dir } => {
            let generated =
                keylime_pki::ensure_generated(dir, &settings.ca, &settings.server_sans, true)
                    .with_context(|| format!("generating TLS material in {}", dir.display()))?;
            (
                dir.clone(),
                generated.server_cert.clone(),
                generated.server_key.clone(),
                vec![generated.ca_cert.clone()],
            )
        }
        TlsSetup::Files {
            dir,
            server_cert,
            server_key,
            trusted_client_ca,
        } => (
            dir.clone(),
            server_cert.clone(),
            server_key.clone(),
            trusted_client_ca.clone(),
        ),
    };
    let chain = keylime_pki::load_certs(&server_cert)
        .with_context(|| format!("loading server certificate {}", server_cert.display()))?;
    let key = keylime_pki::load_key(&server_key)
        .with_context(|| format!("loading server key {}", server_key.display()))?;
    let mut cas = Vec::new();
    for path in &client_cas {
        cas.extend(
            keylime_pki::load_certs(path)
                .with_context(|| format!("loading trusted client CA {}", path.display()))?,
        );
    }
    let config = keylime_pki::server_config(chain, key, ClientAuth::Optional(cas))
        .context("building the HTTPS server configuration")?;
    Ok(PreparedTls {
        acceptor: TlsAcceptor::from(config),
        dir,
    })
}
