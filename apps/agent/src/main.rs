//! `keylime_agent`: sets up logging, reads the configuration and runs the agent until
//! SIGTERM or SIGINT.

use clap::Parser;

/// Keylime agent (pull mode).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Register and activate at the registrar, then exit 0.
    #[arg(long, env = "KEYLIME_AGENT_REGISTER_ONLY")]
    register_only: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    keylime_pki::install_default_provider();
    let config = keylime_config::AgentConfig::load()?;
    if cli.register_only {
        let tcti = keylime_tpm::Tcti::from_env()?;
        keylime_agent::register_once(&config, tcti).await?;
        return Ok(());
    }
    keylime_agent::run(config, shutdown_signal()).await
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the agent");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
