//! The Keylime agent: owns the machine's TPM identity (EK, AK), registers with the
//! registrar and proves the AK lives beside the EK (ActivateCredential).
//!
//! Entry points: [`run`] (the service: register, then keep running until shutdown) and
//! [`register_once`] (register, activate, flush, return — for tests and
//! `--register-only`). The pull-mode quote API will be started from [`run_with_tcti`]
//! once registration succeeded, sharing [`shared_tpm::SharedTpm`].
#![forbid(unsafe_code)]

pub mod backoff;
pub mod identity;
pub mod mtls;
pub mod registrar_client;
pub mod registration;
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
            shutdown.await;
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
