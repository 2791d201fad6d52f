//! The Keylime verifier, pull mode (PROTOCOL.md §5): the v2.x agent API over HTTPS with
//! optional client certificates (admin routes need one), and a pull loop that polls every
//! enrolled agent for integrity quotes, checks them with the attestation engine
//! (`keylime-attestation`) and persists each agent's state so a restart resumes it.
//!
//! [`start`] runs the service in-process; `main.rs` only loads configuration and calls it.
//! Modules: [`settings`] (configuration), `state` (what the handlers share),
//! `service`/`routes`/`agents` (HTTP: one function per operation), `verify`
//! (`/verify/identity`, `/verify/evidence`), `evidence_gate` (the limits of
//! `/verify/evidence`), `pull` (the per-agent tasks, V delivery), `revocation` (notices to
//! webhook and agents), `outbound` (every request the verifier makes), `clock`, `tls`,
//! `listener`.

#![forbid(unsafe_code)]

mod agents;
mod clock;
mod error;
mod evidence_gate;
mod http;
use keylime_web::listener;
pub mod openapi;
mod outbound;
mod policies;
pub mod policy_cache;
mod pull;
pub mod push;
mod revocation;
mod routes;
mod service;
pub mod settings;
mod state;
mod status;
mod tls;
mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use keylime_api::verifier::OperationalState;
use keylime_attestation::SeverityPolicy;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

pub use evidence_gate::EvidenceSettings;
pub use settings::{PollTiming, RevocationSettings, TlsSetup, VerifierSettings};

use crate::pull::{PullContext, Supervisor};
use crate::state::AppState;

/// A verifier running in this process.
pub struct RunningVerifier {
    /// Bound HTTPS address.
    pub addr: SocketAddr,
    /// TLS directory (CA, server and client certificates).
    pub tls_dir: PathBuf,
    shutdown: watch::Sender<bool>,
    listener: JoinHandle<()>,
    supervisor: Arc<Supervisor>,
    store: keylime_store::Store,
}

impl std::fmt::Debug for RunningVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningVerifier")
            .field("addr", &self.addr)
            .field("tls_dir", &self.tls_dir)
            .finish_non_exhaustive()
    }
}

impl RunningVerifier {
    /// The verifier's store (what it has persisted).
    pub fn store(&self) -> &keylime_store::Store {
        &self.store
    }

    /// Whether a task is polling `agent_id` (an agent at maximum severity is no longer).
    pub fn is_polling(&self, agent_id: &str) -> bool {
        self.supervisor.is_running(agent_id)
    }

    /// Stop polling and accepting, let in-flight requests finish, close the database.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.supervisor.shutdown();
        if let Err(err) = self.listener.await {
            tracing::error!(error = %err, "listener task failed");
        }
        self.store.close().await;
    }

    /// A handle that requests shutdown from elsewhere (a signal handler).
    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }

    /// Wait until the listener stops (after a shutdown request), then stop polling.
    pub async fn wait(self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|s| *s).await;
        self.shutdown().await;
    }
}

/// Start the verifier: TLS material, database, resumed agents, the HTTPS listener.
pub async fn start(settings: VerifierSettings) -> anyhow::Result<RunningVerifier> {
    keylime_pki::install_default_provider();
    let tls = tls::prepare(&settings).context("preparing the verifier's TLS material")?;
    let store = keylime_store::Store::connect(&settings.database_url, &settings.store_options)
        .await
        .with_context(|| format!("opening the verifier database {}", settings.database_url))?;
    let severity = SeverityPolicy::new(settings.severity_labels.clone(), &settings.severity_policy)
        .context("[verifier] severity_labels / severity_policy")?;
    let max_severity = u32::try_from(settings.severity_labels.len().saturating_sub(1))?;
    let agent_tls = Arc::new(tls.agent_client);
    let notifier = revocation::Notifier::new(
        &settings.revocations,
        store.clone(),
        settings.verifier_id.clone(),
        settings.timing.clone(),
        Arc::clone(&agent_tls),
        settings.enable_agent_mtls,
    )
    .context("[revocations] notifier setup")?;
    let policies = Arc::new(policy_cache::PolicyCache::new(
        store.clone(),
        settings.policy.clone(),
    ));
    let supervisor = Supervisor::new(PullContext {
        policies,
        store: store.clone(),
        timing: settings.timing.clone(),
        agent_tls,
        severity: Arc::new(severity),
        max_severity,
        polls: Semaphore::new(settings.max_concurrent_polls.max(1)),
        require_mtls: settings.enable_agent_mtls,
        notifier: Arc::clone(&notifier),
    });

    let listener = TcpListener::bind(settings.addr)
        .await
        .with_context(|| format!("binding the HTTPS listener on {}", settings.addr))?;
    let addr = listener.local_addr()?;

    // Resume: agents that were being polled start again from START (upstream).
    let repo = store.verifier();
    let reset = repo.reset_for_restart(&settings.verifier_id).await?;
    let mut resumed = 0usize;
    for agent in repo.list(Some(&settings.verifier_id)).await? {
        if agent.operational_state == OperationalState::Start as i32 {
            supervisor.spawn(agent);
            resumed += 1;
        }
    }
    tracing::info!(reset, resumed, verifier_id = %settings.verifier_id, "agents resumed");
    notifier
        .resume_pending()
        .await
        .context("resuming pending revocation webhooks")?;

    let state = Arc::new(AppState {
        store: store.clone(),
        supervisor: Arc::clone(&supervisor),
        verifier_id: settings.verifier_id.clone(),
        listen_addr: addr,
        quote_interval_secs: settings.timing.quote_interval.as_secs_f64(),
        max_body_bytes: settings.max_body_bytes,
        policy_settings: settings.policy.clone(),
        evidence: evidence_gate::EvidenceGate::new(settings.evidence.clone()),
        sessions: push::SessionRegistry::new(settings.sessions.clone()),
    });
    let (shutdown, rx) = watch::channel(false);
    let listener = tokio::spawn(listener::serve(
        listener,
        Some(tls.acceptor),
        service::app(state),
        settings.connections.clone().within_fd_limit(1),
        rx,
    ));
    tracing::info!(%addr, tls_dir = %tls.dir.display(), "verifier listening");
    Ok(RunningVerifier {
        addr,
        tls_dir: tls.dir,
        shutdown,
        listener,
        supervisor,
        store,
    })
}

/// Run until SIGTERM or SIGINT, then shut down gracefully.
pub async fn run_until_signal(settings: VerifierSettings) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let running = start(settings).await?;
    let handle = running.shutdown_handle();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutdown requested"),
            _ = int.recv() => tracing::info!(signal = "SIGINT", "shutdown requested"),
        }
        let _ = handle.send(true);
    });
    running.wait().await;
    tracing::info!("verifier stopped");
    Ok(())
}
