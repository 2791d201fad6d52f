//! The Keylime registrar: trust anchor for agent identities (PROTOCOL.md §2, §3).
//!
//! It stores each agent's EK, EK certificate, AK and mTLS certificate, proves the AK lives
//! in the same TPM as the EK with MakeCredential/ActivateCredential, and serves the admin
//! routes the tenant and verifier read. [`start`] runs the service in-process; `main.rs`
//! only loads configuration and calls it.

#![forbid(unsafe_code)]

mod agents;
mod error;
mod http;
pub mod openapi;
pub mod registration_checks;
use keylime_web::listener;
mod routes;
mod service;
mod settings;
mod state;
mod tls;
pub mod vendor_cas;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::ApiError;
pub use registration_checks::TpmIdentity;
pub use settings::{DEFAULT_MAX_BODY_BYTES, DEFAULT_REQUEST_TIMEOUT, RegistrarSettings, TlsSetup};

use crate::http::RequestLimits;
use crate::registration_checks::RegistrationPolicy;
use crate::state::AppState;
use crate::vendor_cas::VendorCaStore;

/// A registrar running in this process.
#[derive(Debug)]
pub struct RunningRegistrar {
    /// Bound plain HTTP address.
    pub http_addr: SocketAddr,
    /// Bound HTTPS address.
    pub https_addr: SocketAddr,
    /// TLS directory (CA, server and client certificates).
    pub tls_dir: PathBuf,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningRegistrar {
    /// Stop accepting, let in-flight requests finish, and wait for both listeners.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.wait().await;
    }

    /// Wait until both listeners have stopped (after a shutdown request).
    pub async fn wait(self) {
        for task in self.tasks {
            if let Err(err) = task.await {
                tracing::error!(error = %err, "listener task failed");
            }
        }
    }

    /// A handle that requests shutdown from elsewhere (for example a signal handler).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }
}

/// Requests a graceful shutdown of a [`RunningRegistrar`].
#[derive(Debug, Clone)]
pub struct ShutdownHandle(watch::Sender<bool>);

impl ShutdownHandle {
    /// Ask the listeners to stop.
    pub fn shutdown(&self) {
        let _ = self.0.send(true);
    }
}

/// Start the registrar: TLS material, database, both listeners.
pub async fn start(settings: RegistrarSettings) -> anyhow::Result<RunningRegistrar> {
    let tls = tls::prepare(&settings).context("preparing the registrar's TLS material")?;

    let store = keylime_store::Store::connect(&settings.database_url, &settings.store_options)
        .await
        .with_context(|| format!("opening the registrar database {}", settings.database_url))?;

    let policy = RegistrationPolicy {
        require_ek_cert: settings.require_ek_cert,
        tpm_identity: settings.tpm_identity,
        cert_store: load_cert_store(&settings),
    };
    let state = Arc::new(AppState {
        store,
        policy,
        max_body_bytes: settings.max_body_bytes,
    });
    let app = service::app(
        state,
        RequestLimits {
            timeout: Some(settings.request_timeout),
        },
    );

    let http = TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("binding the HTTP listener on {}", settings.http_addr))?;
    let https = TcpListener::bind(settings.https_addr)
        .await
        .with_context(|| format!("binding the HTTPS listener on {}", settings.https_addr))?;
    let http_addr = http.local_addr()?;
    let https_addr = https.local_addr()?;

    let limits = settings.connections.clone().within_fd_limit(2);
    let (shutdown, rx) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(listener::serve(
            http,
            None,
            app.clone(),
            limits.clone(),
            rx.clone(),
        )),
        tokio::spawn(listener::serve(https, Some(tls.acceptor), app, limits, rx)),
    ];
    tracing::info!(%http_addr, %https_addr, tls_dir = %tls.dir.display(), "registrar listening");
    Ok(RunningRegistrar {
        http_addr,
        https_addr,
        tls_dir: tls.dir,
        shutdown,
        tasks,
    })
}

fn load_cert_store(settings: &RegistrarSettings) -> Option<VendorCaStore> {
    let store = VendorCaStore::new(settings.tpm_cert_store.as_ref()?);
    // Read it now so a broken directory shows in the start-up log, not only at the first
    // registration; later changes are picked up without a restart.
    if let Err(reason) = store.current() {
        if settings.require_ek_cert {
            tracing::error!(path = %store.dir().display(), %reason,
                "TPM cert store unusable: registrations will be refused until it is fixed (require_ek_cert = true)");
        } else {
            tracing::warn!(path = %store.dir().display(), %reason, "TPM cert store unusable");
        }
    }
    Some(store)
}

/// Run until SIGTERM or SIGINT, then shut down gracefully.
pub async fn run_until_signal(settings: RegistrarSettings) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Install the handlers before starting so no signal falls through to the default action.
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let running = start(settings).await?;
    let handle = running.shutdown_handle();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutdown requested"),
            _ = int.recv() => tracing::info!(signal = "SIGINT", "shutdown requested"),
        }
        handle.shutdown();
    });
    running.wait().await;
    tracing::info!("registrar stopped");
    Ok(())
}
