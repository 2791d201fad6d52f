//! Binding the pull API's port and handing it to the shared listener
//! (`keylime_web::listener::serve`: TLS handshake with the required client certificate,
//! hyper per connection, graceful drain on shutdown).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The listener could not start.
#[derive(Debug, Error)]
pub enum PullServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Serves `app` on `addr` (TLS when `tls` is given) until `shutdown` completes.
pub async fn serve(
    addr: &str,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    shutdown: impl Future<Output = ()>,
) -> Result<(), PullServerError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| PullServerError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(addr, scheme, "pull API listening");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The agent's callers are the verifier and the tenant: the shared defaults fit.
    let limits = keylime_web::limits::ConnectionLimits::default().within_fd_limit(1);
    let server =
        keylime_web::listener::serve(listener, tls.map(TlsAcceptor::from), app, limits, stop_rx);
    let mut server = std::pin::pin!(server);
    tokio::select! {
        () = &mut server => return Ok(()),
        () = shutdown => {}
    }
    let _ = stop_tx.send(true);
    server.await;
    tracing::info!("pull API stopped");
    Ok(())
}
