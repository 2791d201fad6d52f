//! The two listeners (PROTOCOL.md §0.6): plain HTTP and HTTPS with an optional client
//! certificate. Each accepted connection enters the listener's connection table
//! ([`crate::connections`]: caps, idle deadlines), is served by hyper with the axum router,
//! and every request carries a [`ConnectionInfo`] extension so handlers can tell the
//! transport and see the verified peer certificate. Accept errors never end the loop: out
//! of descriptors (`EMFILE`, `ENFILE`) it closes the oldest idle connection and backs off.
//! Shutdown stops accepting, then lets in-flight requests finish (bounded).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::connections::{Admission, Conn, Table, Tracked};
pub use crate::limits::ConnectionLimits;

/// How long in-flight connections may run after shutdown was requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// First and longest pause of the accept loop after running out of descriptors.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_millis(250);

/// Transport facts about the connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// Whether the request came over TLS.
    pub tls: bool,
    /// The client certificate, present only when it chained to a trusted client CA
    /// (rustls rejects the handshake otherwise).
    pub peer_cert: Option<CertificateDer<'static>>,
    /// The client's address.
    pub remote: SocketAddr,
}

/// Accept connections on `listener` until `shutdown` flips, serving `app` over plain HTTP
/// or, when `tls` is given, over TLS, within `limits`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let table = Table::new(limits);
    let mut backoff = Backoff::default();
    loop {
        let accepted = tokio::select! {
            accepted = async {
                table.make_room().await;
                listener.accept().await
            } => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                let Some(pause) = backoff.failed(&err, &table, scheme) else {
                    continue;
                };
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
            }
        };
        backoff.succeeded(scheme);
        let (conn, entry) = match table.admit(remote.ip(), tls.is_some()) {
            Admission::Admitted(conn, entry) => (conn, entry),
            Admission::Refused => {
                tracing::debug!(%remote, scheme, "connection refused: too many from this address");
                continue;
            }
        };
        let app = app.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        let table = Arc::clone(&table);
        tokio::spawn(async move {
            let limits = table.limits();
            // Evicted or silent past its deadline: dropping the connection closes it.
            tokio::select! {
                () = connection(stream, remote, tls, app, &conn, limits, watcher) => {}
                why = conn.expired(limits) => {
                    tracing::debug!(%remote, scheme, reason = why.as_str(), "connection closed");
                }
            }
            drop(entry);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(scheme, "in-flight connections did not finish in time");
    }
}

async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: Router,
    conn: &Arc<Conn>,
    limits: &ConnectionLimits,
    watcher: Watcher,
) {
    match tls {
        None => {
            let info = ConnectionInfo {
                tls: false,
                peer_cert: None,
                remote,
            };
            serve_connection(stream, info, app, conn, limits, watcher).await;
        }
        Some(acceptor) => {
            if let Some((tls_stream, info)) = handshake(acceptor, stream, remote, limits).await {
                conn.ready();
                serve_connection(tls_stream, info, app, conn, limits, watcher).await;
            }
        }
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    remote: SocketAddr,
    limits: &ConnectionLimits,
) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, ConnectionInfo)> {
    match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls_stream)) => {
            let peer_cert = tls_stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|cert| cert.clone().into_owned());
            let info = ConnectionInfo {
                tls: true,
                peer_cert,
                remote,
            };
            Some((tls_stream, info))
        }
        Ok(Err(err)) => {
            tracing::info!(%remote, error = %err, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(%remote, "TLS handshake timed out");
            None
        }
    }
}

async fn serve_connection<S>(
    stream: S,
    info: ConnectionInfo,
    app: Router,
    conn: &Arc<Conn>,
    limits: &ConnectionLimits,
    watcher: Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let remote = info.remote;
    let io = TokioIo::new(Tracked::new(stream, Arc::clone(conn)));
    let conn = Arc::clone(conn);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(info.clone());
        // In service until the response is ready: the watchdog leaves it alone meanwhile.
        let in_service = conn.begin_request();
        let app = app.clone();
        async move {
            let response = app.oneshot(req).await;
            drop(in_service);
            Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
        }
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let served = builder.serve_connection(io, service);
    let served = watcher.watch(served.into_owned());
    if let Err(err) = served.await {
        tracing::debug!(%remote, error = %err, "connection ended with an error");
    }
}

/// The accept loop's pause after failures: exponential while out of descriptors, and one
/// warning per streak of failures instead of one per attempt.
#[derive(Debug, Default)]
struct Backoff {
    pause: Option<Duration>,
    failures: u64,
}

impl Backoff {
    /// Handle a failed accept; `Some(pause)` when the loop should wait before the next.
    fn failed(&mut self, err: &std::io::Error, table: &Table, scheme: &str) -> Option<Duration> {
        if !is_resource_exhaustion(err) {
            // The peer gave up before we took it (ECONNABORTED and the like).
            tracing::debug!(error = %err, scheme, "accept failed");
            return None;
        }
        self.failures += 1;
        // Free a descriptor for the next attempt if some connection is only waiting.
        let shed = table.shed_one();
        let pause = self.pause.map_or(BACKOFF_MIN, |p| (p * 2).min(BACKOFF_MAX));
        if self.pause.is_none() {
            tracing::warn!(
                error = %err,
                scheme,
                open_connections = table.len(),
                shed_idle = shed,
                "accept failed: out of file descriptors; backing off"
            );
        }
        self.pause = Some(pause);
        Some(pause)
    }

    fn succeeded(&mut self, scheme: &str) {
        if self.pause.take().is_some() {
            tracing::info!(
                failures = self.failures,
                scheme,
                "accepting again after running out of file descriptors"
            );
            self.failures = 0;
        }
    }
}

/// Errors that mean the process or system is out of descriptors or buffers, where retrying
/// at once would spin.
fn is_resource_exhaustion(err: &std::io::Error) -> bool {
    const ENOMEM: i32 = 12;
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    const ENOBUFS: i32 = 105;
    matches!(err.raw_os_error(), Some(ENOMEM | ENFILE | EMFILE | ENOBUFS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_exhaustion_backs_off_exponentially_and_resets() {
        let table = Table::new(ConnectionLimits::default());
        let mut b = Backoff::default();
        let emfile = std::io::Error::from_raw_os_error(24);
        let pauses: Vec<_> = (0..10)
            .map(|_| b.failed(&emfile, &table, "http").unwrap())
            .collect();
        assert_eq!(pauses[0], BACKOFF_MIN);
        assert_eq!(pauses[1], BACKOFF_MIN * 2);
        assert_eq!(*pauses.last().unwrap(), BACKOFF_MAX);
        b.succeeded("http");
        assert_eq!(b.failed(&emfile, &table, "http"), Some(BACKOFF_MIN));
        let aborted = std::io::Error::from(std::io::ErrorKind::ConnectionAborted);
        assert_eq!(b.failed(&aborted, &table, "http"), None);
    }
}
