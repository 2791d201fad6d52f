//! A revocation webhook receiver for the end-to-end tests: HTTPS with a server certificate
//! from the deployment's `cv_ca` (which the verifier trusts as `trusted_server_ca`). While
//! up it records every body POSTed and answers 200; while down it answers 503 and records
//! the body as refused, so a test can count delivery attempts and see which notice each was.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;

/// The running receiver; it serves until dropped.
pub struct WebhookReceiver {
    /// Where the verifier must POST.
    pub url: String,
    log: Arc<Deliveries>,
    _serving: tokio::sync::watch::Sender<bool>,
}

#[derive(Default)]
struct Deliveries {
    up: AtomicBool,
    received: Mutex<Vec<Value>>,
    refused: Mutex<Vec<Value>>,
}

impl WebhookReceiver {
    /// Starts on a free loopback port with a certificate issued by the CA in `cv_ca`;
    /// `up` says whether it accepts notices at first.
    pub async fn start(cv_ca: &Path, up: bool) -> WebhookReceiver {
        let read = |name: &str| std::fs::read_to_string(cv_ca.join(name)).expect(name);
        let ca = keylime_pki::CertificateAuthority::load(
            &read("cacert.crt"),
            &read("ca-private.pem"),
            &keylime_pki::CaOptions::default(),
        )
        .expect("the verifier's CA");
        let issued = ca
            .issue(
                keylime_pki::CertRole::Server,
                "webhook",
                &["127.0.0.1".to_string()],
            )
            .expect("webhook certificate");
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("c.pem"), &issued.cert_pem).expect("certificate file");
        std::fs::write(dir.path().join("k.pem"), &issued.key_pem).expect("key file");
        let chain = keylime_pki::load_certs(&dir.path().join("c.pem")).expect("certificate");
        let key = keylime_pki::load_key(&dir.path().join("k.pem")).expect("key");
        let config = keylime_pki::server_config(chain, key, keylime_pki::ClientAuth::None)
            .expect("server TLS configuration");

        let log = Arc::new(Deliveries::default());
        log.up.store(up, Ordering::SeqCst);
        let sink = Arc::clone(&log);
        let app = Router::new().route(
            "/hook",
            post(move |body: String| {
                let sink = Arc::clone(&sink);
                async move {
                    let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
                    if sink.up.load(Ordering::SeqCst) {
                        sink.received.lock().unwrap().push(v);
                        StatusCode::OK
                    } else {
                        sink.refused.lock().unwrap().push(v);
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the webhook receiver");
        let port = listener.local_addr().expect("local address").port();
        let (serving, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(keylime_web::listener::serve(
            listener,
            Some(tokio_rustls::TlsAcceptor::from(config)),
            app,
            keylime_web::limits::ConnectionLimits::default(),
            rx,
        ));
        WebhookReceiver {
            url: format!("https://127.0.0.1:{port}/hook"),
            log,
            _serving: serving,
        }
    }

    /// Accept notices from now on (`true`) or refuse them with 503 (`false`).
    pub fn set_up(&self, up: bool) {
        self.log.up.store(up, Ordering::SeqCst);
    }

    /// Bodies accepted so far, in arrival order.
    pub fn received(&self) -> Vec<Value> {
        self.log.received.lock().unwrap().clone()
    }

    /// Bodies refused so far (one per delivery attempt while down), in arrival order.
    pub fn refused(&self) -> Vec<Value> {
        self.log.refused.lock().unwrap().clone()
    }
}

/// The inner message of a revocation envelope (`msg` is JSON text).
pub fn notice_message(envelope: &Value) -> Value {
    let msg = envelope["msg"].as_str().expect("msg is a JSON string");
    serde_json::from_str(msg).expect("msg parses")
}
