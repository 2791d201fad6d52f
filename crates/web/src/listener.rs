//! The two listeners (PROTOCOL.md §0.6): plain HTTP and HTTPS with an optional client
//! certificate. Each accepted connection is served by hyper with the axum router, and every
//! request carries a [`ConnectionInfo`] extension so handlers can tell the transport and
//! see the verified peer certificate. Shutdown stops accepting, then lets in-flight
//! requests finish (bounded).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send the request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight connections may run after shutdown was requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

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
/// or, when `tls` is given, over TLS.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let scheme = if tls.is_some() { "https" } else { "http" };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // Per-connection errors (EMFILE, aborted) must not end the listener.
                tracing::warn!(error = %err, scheme, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = app.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            match tls {
                None => {
                    let info = ConnectionInfo {
                        tls: false,
                        peer_cert: None,
                        remote,
                    };
                    serve_connection(TokioIo::new(stream), info, app, watcher).await;
                }
                Some(acceptor) => {
                    if let Some((tls_stream, info)) = handshake(acceptor, stream, remote).await {
                        serve_connection(TokioIo::new(tls_stream), info, app, watcher).await;
                    }
                }
            }
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

async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    remote: SocketAddr,
) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, ConnectionInfo)> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
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

async fn serve_connection<I>(io: I, info: ConnectionInfo, app: Router, watcher: Watcher)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let remote = info.remote;
    let service = app.map_request(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(info.clone());
        req
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection(io, TowerToHyperService::new(service));
    let conn = watcher.watch(conn.into_owned());
    if let Err(err) = conn.await {
        tracing::debug!(%remote, error = %err, "connection ended with an error");
    }
}
