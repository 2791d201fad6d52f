//! TLS material (PROTOCOL.md §0.6): the HTTPS listener's acceptor (client certificate
//! optional, chaining to `trusted_client_ca`) and what the verifier presents and trusts as a
//! client of agents (`client-cert.crt`, `trusted_server_ca` plus each agent's `mtls_cert`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use keylime_pki::{CertificateDer, ClientAuth, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::settings::{TlsSetup, VerifierSettings};

/// The verifier's identity and trust as a client of agents.
#[derive(Debug)]
pub struct AgentClientTls {
    pub trusted_server_cas: Vec<CertificateDer<'static>>,
    pub cert_chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl AgentClientTls {
    /// A rustls client config trusting the CAs plus `agent_cert` (the agent's `mtls_cert`).
    pub fn config_for(
        &self,
        agent_cert: Option<CertificateDer<'static>>,
    ) -> Result<Arc<rustls::ClientConfig>, keylime_pki::PkiError> {
        keylime_pki::client_config_with_extra_roots(
            self.trusted_server_cas.clone(),
            agent_cert.into_iter().collect(),
            Some((self.cert_chain.clone(), self.key.clone_key())),
        )
    }
}

/// Ready TLS material.
pub struct PreparedTls {
    pub acceptor: TlsAcceptor,
    pub dir: PathBuf,
    pub agent_client: AgentClientTls,
}

fn certs(paths: &[PathBuf], what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let mut out = Vec::new();
    for p in paths {
        out.extend(
            keylime_pki::load_certs(p)
                .with_context(|| format!("loading {what} {}", p.display()))?,
        );
    }
    Ok(out)
}

/// Generate or load the TLS material named by `settings.tls`.
pub fn prepare(settings: &VerifierSettings) -> anyhow::Result<PreparedTls> {
    let (dir, server_cert, server_key, client_cas, client_cert, client_key, server_cas) =
        match &settings.tls {
            TlsSetup::Generate { dir } => {
                let g =
                    keylime_pki::ensure_generated(dir, &settings.ca, &settings.server_sans, true)
                        .with_context(|| format!("generating TLS material in {}", dir.display()))?;
                let (Some(cc), Some(ck)) = (g.client_cert.clone(), g.client_key.clone()) else {
                    anyhow::bail!(
                        "generated TLS directory {} lacks a client certificate",
                        dir.display()
                    );
                };
                (
                    dir.clone(),
                    g.server_cert.clone(),
                    g.server_key.clone(),
                    vec![g.ca_cert.clone()],
                    cc,
                    ck,
                    vec![g.ca_cert.clone()],
                )
            }
            TlsSetup::Files {
                dir,
                server_cert,
                server_key,
                trusted_client_ca,
                client_cert,
                client_key,
                trusted_server_ca,
            } => (
                dir.clone(),
                server_cert.clone(),
                server_key.clone(),
                trusted_client_ca.clone(),
                client_cert.clone(),
                client_key.clone(),
                trusted_server_ca.clone(),
            ),
        };
    let chain = keylime_pki::load_certs(&server_cert)
        .with_context(|| format!("loading server certificate {}", server_cert.display()))?;
    let key = keylime_pki::load_key(&server_key)
        .with_context(|| format!("loading server key {}", server_key.display()))?;
    let config = keylime_pki::server_config(
        chain,
        key,
        ClientAuth::Optional(certs(&client_cas, "trusted client CA")?),
    )
    .context("building the HTTPS server configuration")?;
    let agent_client = AgentClientTls {
        trusted_server_cas: certs(&server_cas, "trusted server CA")?,
        cert_chain: keylime_pki::load_certs(&client_cert)
            .with_context(|| format!("loading client certificate {}", client_cert.display()))?,
        key: keylime_pki::load_key(&client_key)
            .with_context(|| format!("loading client key {}", client_key.display()))?,
    };
    Ok(PreparedTls {
        acceptor: TlsAcceptor::from(config),
        dir,
        agent_client,
    })
}
