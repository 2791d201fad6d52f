//! Agent start-up as one sequence: open the TPM, prepare EK/AK, pick the agent id,
//! prepare the mTLS server certificate, register and activate at the registrar.
//!
//! Owns the wiring from `AgentConfig` to the pieces (`tpm_setup`, `mtls`,
//! `registration`) and the guarantee that transient TPM objects are flushed on every
//! path out ([`StartedAgent::release`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use keylime_api::{ApiVersion, RegisterRequest};
use keylime_config::AgentConfig;
use keylime_tpm::Tcti;

use crate::agent_id::resolve_agent_id;
use crate::backoff::RetryPolicy;
use crate::mtls::{self, MTLS_DISABLED, ServerIdentity};
use crate::registrar_client::{RegistrarClient, RegistrarEndpoint};
use crate::registration::{Registration, register_and_activate};
use crate::shared_tpm::SharedTpm;
use crate::tpm_setup::{TpmIdentity, TpmSettings, public_b64};
use crate::version::parse_enabled;

/// Per-request timeout towards the registrar.
const REGISTRAR_TIMEOUT: Duration = Duration::from_secs(30);

/// What a completed registration established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredAgent {
    pub agent_id: String,
    /// API version the registrar accepted.
    pub api_version: ApiVersion,
    /// b64 TPM2B_PUBLIC of the EK and AK that were registered.
    pub ek_tpm: String,
    pub aik_tpm: String,
    /// Whether the AK came from the agent data file rather than being created.
    pub ak_reused: bool,
    /// The `mtls_cert` sent: PEM, or `"disabled"`.
    pub mtls_cert: String,
}

/// An agent whose TPM identity is loaded; registration may or may not have happened.
pub struct StartedAgent {
    pub tpm: SharedTpm,
    pub identity: Arc<TpmIdentity>,
    pub agent_id: String,
    /// The server certificate and key, when `enable_agent_mtls` is on.
    pub server_identity: Option<ServerIdentity>,
}

impl StartedAgent {
    /// Opens the TPM and prepares EK, AK, agent id and mTLS certificate.
    pub async fn start(config: &AgentConfig, tcti: Tcti) -> anyhow::Result<Self> {
        let settings = TpmSettings::from_config(config)?;
        let tpm = SharedTpm::open(tcti).await?;
        let identity = Arc::new(tpm.prepare_identity(settings).await??);
        let started = Self::finish_start(config, tpm.clone(), identity).await;
        if started.is_err() {
            release(&tpm).await;
        }
        started
    }

    async fn finish_start(
        config: &AgentConfig,
        tpm: SharedTpm,
        identity: Arc<TpmIdentity>,
    ) -> anyhow::Result<Self> {
        let spki = identity
            .ek
            .public
            .spki_der()
            .context("EK public key cannot be encoded as SubjectPublicKeyInfo")?;
        let agent_id = resolve_agent_id(&config.uuid, &spki);
        tracing::info!(agent_id, "agent id chosen");
        let server_identity = if config.enable_agent_mtls {
            let (cert, key, id, ip) = (
                config.server_cert.clone(),
                config.server_key.clone(),
                agent_id.clone(),
                config.contact_ip.clone(),
            );
            let sid = tokio::task::spawn_blocking(move || {
                mtls::load_or_create_server_identity(&cert, &key, &id, &ip)
            })
            .await??;
            Some(sid)
        } else {
            tracing::info!(agent_id, "agent mTLS disabled (enable_agent_mtls = false)");
            None
        };
        Ok(Self {
            tpm,
            identity,
            agent_id,
            server_identity,
        })
    }

    /// Registers and activates the agent at the configured registrar.
    pub async fn register(&self, config: &AgentConfig) -> anyhow::Result<RegisteredAgent> {
        let client = registrar_client(config)?;
        let enabled_versions = parse_enabled(&config.enabled_registrar_api_versions())?;
        let mtls_cert = match &self.server_identity {
            Some(sid) => sid.cert_pem.clone(),
            None => MTLS_DISABLED.to_string(),
        };
        let ek_tpm = public_b64(&self.identity.ek);
        let aik_tpm = public_b64(&self.identity.ak);
        let request = RegisterRequest {
            aik_tpm: Some(aik_tpm.clone()),
            ek_tpm: Some(ek_tpm.clone()),
            ekcert: Some(self.identity.ek_cert_pem.clone().unwrap_or_default()),
            mtls_cert: Some(mtls_cert.clone()),
            ip: Some(config.contact_ip.clone()),
            port: Some(config.contact_port),
            ..RegisterRequest::default()
        };
        let registration = Registration {
            agent_id: self.agent_id.clone(),
            request,
            enabled_versions,
        };
        let policy = retry_policy(config);
        let tpm = self.tpm.clone();
        let decrypt = move |blob: Vec<u8>| {
            let tpm = tpm.clone();
            async move {
                let credential = tpm
                    .with_identity(move |t, identity| identity.activate_credential(t, &blob))
                    .await??;
                Ok(credential)
            }
        };
        let registered = register_and_activate(&client, &registration, &policy, decrypt).await?;
        Ok(RegisteredAgent {
            agent_id: registered.agent_id,
            api_version: registered.api_version,
            ek_tpm,
            aik_tpm,
            ak_reused: self.identity.ak_reused,
            mtls_cert,
        })
    }

    /// Flushes the agent's transient TPM objects.
    pub async fn release(self) {
        release(&self.tpm).await;
    }
}

async fn release(tpm: &SharedTpm) {
    if let Err(e) = tpm.release_identity().await {
        tracing::warn!(error = %e, "could not flush the agent's TPM objects");
    }
}

/// The backoff schedule from `exponential_backoff_*`.
pub fn retry_policy(config: &AgentConfig) -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(config.exponential_backoff_initial_delay),
        max_delay: Duration::from_millis(config.exponential_backoff_max_delay),
        max_retries: config.exponential_backoff_max_retries,
    }
}

/// Plain HTTP to `registrar_port`, or HTTPS to `registrar_tls_port` trusting
/// `registrar_tls_ca_cert` when `registrar_tls_enabled`.
pub fn registrar_client(config: &AgentConfig) -> anyhow::Result<RegistrarClient> {
    let endpoint = if config.registrar_tls_enabled {
        RegistrarEndpoint {
            host: config.registrar_ip.clone(),
            port: config.registrar_tls_port,
            tls: Some(mtls::registrar_client_config(
                &config.registrar_tls_ca_cert,
            )?),
        }
    } else {
        RegistrarEndpoint {
            host: config.registrar_ip.clone(),
            port: config.registrar_port,
            tls: None,
        }
    };
    Ok(RegistrarClient::new(endpoint, REGISTRAR_TIMEOUT)?)
}
