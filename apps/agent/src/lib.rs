//! The Keylime agent: owns the machine's TPM identity (EK, AK), registers with the
//! registrar and proves the AK lives beside the EK (ActivateCredential).
//!
//! Entry points: [`run`] (the service: register, then serve the pull API until shutdown)
//! and [`register_once`] (register, activate, flush, return — for tests and
//! `--register-only`). The pull API (`pull`) shares the TPM through
//! [`shared_tpm::SharedTpm`]; secure payloads and revocation notices are handled by
//! `key_exchange`, `secure_payload` and `revocation`.
#![forbid(unsafe_code)]

pub mod agent_id;
pub mod backoff;
pub mod key_exchange;
pub mod mtls;
pub mod payload_key;
pub mod private_files;
pub mod pull;
pub mod pull_service;
pub mod quoting;
pub mod registrar_client;
pub mod registration;
pub mod revocation;
pub mod secure_payload;
pub mod shared_tpm;
pub mod startup;
pub mod state;
pub mod tpm_setup;
pub mod version;

use std::future::Future;

use anyhow::Context as _;
use keylime_config::AgentConfig;
use keylime_tpm::Tcti;

pub use startup::{RegisteredAgent, StartedAgent};

/// Runs the agent with the TPM named by the `TCTI` environment variable (default: the
/// kernel resource manager) until `shutdown` completes.
pub async fn run(config: AgentConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let tcti = Tcti::from_env()
        .context("cannot read the TPM connection from the TCTI environment variable")?;
    run_with_tcti(config, tcti, shutdown).await
}

/// Like [`run`] with an explicit TPM connection.
pub async fn run_with_tcti(
    config: AgentConfig,
    tcti: Tcti,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    pull_service::check_insecure_payload(&config)?;
    let mut shutdown = std::pin::pin!(shutdown);
    let agent = tokio::select! {
        started = StartedAgent::start(&config, tcti) => started?,
        () = &mut shutdown => {
            tracing::info!("shutdown requested during start-up");
            return Ok(());
        }
    };
    let outcome = tokio::select! {
        registered = agent.register(&config) => Some(registered),
        () = &mut shutdown => None,
    };
    let result = match outcome {
        None => {
            tracing::info!(
                agent_id = agent.agent_id,
                "shutdown requested during registration"
            );
            Ok(())
        }
        Some(Err(e)) => Err(e),
        Some(Ok(registered)) => {
            tracing::info!(
                agent_id = registered.agent_id,
                api_version = %registered.api_version,
                "agent registered and activated"
            );
            // A pull API that cannot start (no trusted_client_ca, port taken) leaves the
            // agent registered but unattestable: say so loudly and keep running until
            // shutdown, so that registration-only deployments keep working.
            if let Err(e) = pull_service::serve_pull_api(&config, &agent, &mut shutdown).await {
                tracing::error!(
                    agent_id = registered.agent_id,
                    error = format!("{e:#}"),
                    "pull API not started; the agent cannot be attested"
                );
                shutdown.await;
            }
            tracing::info!(agent_id = registered.agent_id, "shutting down");
            Ok(())
        }
    };
    agent.release().await;
    result
}

/// Starts, registers and activates once, flushes the TPM objects and returns what was
/// registered.
pub async fn register_once(config: &AgentConfig, tcti: Tcti) -> anyhow::Result<RegisteredAgent> {
    let agent = StartedAgent::start(config, tcti).await?;
    let registered = agent.register(config).await;
    agent.release().await;
    let registered = registered?;
    tracing::info!(
        agent_id = registered.agent_id,
        api_version = %registered.api_version,
        "agent registered and activated"
    );
    Ok(registered)
}
