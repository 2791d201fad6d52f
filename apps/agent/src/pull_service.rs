//! Wiring from `AgentConfig` and a started agent to the running pull API: loads or
//! creates the payload key, prepares the secure directory, builds the TLS configuration
//! (required client certificates from `trusted_client_ca`) and serves until shutdown.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use keylime_config::AgentConfig;

use crate::payload_key::PayloadKey;
use crate::private_files::ensure_private_dir;
use crate::pull::{PullApi, router, serve};
use crate::revocation::RevocationSettings;
use crate::secure_payload::PayloadSettings;
use crate::startup::StartedAgent;
use crate::tpm_setup::TpmSettings;
use crate::version::parse_enabled;

/// Serves the pull API for `agent` until `shutdown` completes.
pub async fn serve_pull_api(
    config: &AgentConfig,
    agent: &StartedAgent,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let settings = TpmSettings::from_config(config)?;
    let key_path = config.payload_key.clone();
    let payload_key =
        tokio::task::spawn_blocking(move || PayloadKey::load_or_create(&key_path)).await??;
    let secure_dir = config.keylime_dir.join("secure");
    ensure_private_dir(&secure_dir).with_context(|| {
        format!(
            "cannot create the secure directory {}",
            secure_dir.display()
        )
    })?;
    let versions =
        parse_enabled(&config.enabled_api_versions()).context("option api_versions is invalid")?;
    let api = PullApi::new(
        agent.agent_id.clone(),
        agent.tpm.clone(),
        Arc::clone(&agent.identity),
        settings.hash_alg,
        settings.sign_alg,
        Arc::new(payload_key),
        versions,
        config.ima_ml_path.clone(),
        config.measuredboot_ml_path.clone(),
        PayloadSettings {
            secure_dir: secure_dir.clone(),
            enc_keyname: config.enc_keyname.clone(),
            dec_payload_file: config.dec_payload_file.clone(),
            extract_payload_zip: config.extract_payload_zip,
            payload_script: config.payload_script.clone(),
        },
        RevocationSettings {
            revocation_cert: config.revocation_cert.clone(),
            secure_dir,
            revocation_actions: config.revocation_actions.clone(),
            revocation_actions_dir: config.revocation_actions_dir.clone(),
            allow_payload_revocation_actions: config.allow_payload_revocation_actions,
        },
        config.enable_agent_mtls || config.enable_insecure_payload,
    );
    let tls = if config.enable_agent_mtls {
        Some(server_tls(config)?)
    } else {
        tracing::warn!(
            enable_insecure_payload = config.enable_insecure_payload,
            "enable_agent_mtls = false: the pull API is served over plain HTTP; key shares \
             and payloads are accepted only with enable_insecure_payload"
        );
        None
    };
    let addr = if config.ip.contains(':') {
        format!("[{}]:{}", config.ip, config.port)
    } else {
        format!("{}:{}", config.ip, config.port)
    };
    serve(&addr, tls, router(Arc::new(api)), shutdown).await?;
    Ok(())
}

/// Upstream's start-up rule (advisory GHSA-2m39-75g9-ff5r): an agent without mTLS that
/// would run a payload script refuses to start unless `enable_insecure_payload` is set.
pub fn check_insecure_payload(config: &AgentConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.enable_agent_mtls
            || config.enable_insecure_payload
            || config.payload_script.is_empty(),
        "enable_agent_mtls is false and payload_script is '{}': payloads over plain HTTP \
         could be planted by anyone; set enable_insecure_payload = true to allow it, or \
         payload_script = \"\" to run without payloads",
        config.payload_script
    );
    Ok(())
}

/// The agent's server certificate and key, and required client certificates chaining
/// to `trusted_client_ca`.
fn server_tls(config: &AgentConfig) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain = keylime_pki::load_certs(&config.server_cert)
        .with_context(|| format!("cannot read server_cert {}", config.server_cert.display()))?;
    let key = keylime_pki::load_key(&config.server_key)
        .with_context(|| format!("cannot read server_key {}", config.server_key.display()))?;
    let mut cas = Vec::new();
    for path in &config.trusted_client_ca {
        cas.extend(keylime_pki::load_certs(path).with_context(|| {
            format!(
                "cannot read trusted_client_ca {} (needed with enable_agent_mtls = true)",
                path.display()
            )
        })?);
    }
    anyhow::ensure!(
        !cas.is_empty(),
        "trusted_client_ca lists no certificate; enable_agent_mtls = true needs at least one"
    );
    Ok(keylime_pki::server_config(
        chain,
        key,
        keylime_pki::ClientAuth::Required(cas),
    )?)
}
