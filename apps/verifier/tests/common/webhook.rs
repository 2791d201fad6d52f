//! A revocation webhook receiver for tests: HTTPS with its own CA (which the verifier must
//! be told to trust through `trusted_server_ca`), recording every POSTed body. While "down"
//! it accepts TCP connections and drops them at once, as an unreachable service would.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use keylime_pki::{CaOptions, KeyAlgorithm};
use keylime_verifier::{TlsSetup, VerifierSettings};
use serde_json::Value;

pub struct WebhookReceiver {
    pub url: String,
    /// The receiver's CA certificate file.
    pub ca_file: PathBuf,
    pub bodies: Arc<Mutex<Vec<Value>>>,
    /// Connections dropped while down.
    pub refused: Arc<AtomicU64>,
    up: Arc<AtomicBool>,
}

impl WebhookReceiver {
    /// Start on a free port; `up` says whether it answers at first.
    pub async fn start(dir: &Path, up: bool) -> WebhookReceiver {
        let opts = CaOptions {
            key_algorithm: KeyAlgorithm::EcdsaP256,
            ..CaOptions::default()
        };
        let ca = keylime_pki::CertificateAuthority::generate(&opts).unwrap();
        let issued = ca
            .issue(
                keylime_pki::CertRole::Server,
                "webhook",
                &["127.0.0.1".into()],
            )
            .unwrap();
        std::fs::create_dir_all(dir).unwrap();
        let ca_file = dir.join("webhook-ca.crt");
        std::fs::write(&ca_file, ca.cert_pem()).unwrap();
        let chain = keylime_pki::pem_or_der_to_der_list(issued.cert_pem.as_bytes())
            .unwrap()
            .into_iter()
            .map(keylime_pki::CertificateDer::from)
            .collect();
        let key = {
            use rustls_pki_types::pem::PemObject as _;
            keylime_pki::PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap()
        };
        let config = keylime_pki::server_config(chain, key, keylime_pki::ClientAuth::None).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(AtomicU64::new(0));
        let up = Arc::new(AtomicBool::new(up));
        let app = {
            let bodies = Arc::clone(&bodies);
            axum::Router::new().route(
                "/revocation",
                axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                    let bodies = Arc::clone(&bodies);
                    async move {
                        bodies.lock().unwrap().push(body);
                        "ok"
                    }
                }),
            )
        };
        {
            let (up, refused) = (Arc::clone(&up), Arc::clone(&refused));
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    if !up.load(Ordering::SeqCst) {
                        refused.fetch_add(1, Ordering::SeqCst);
                        drop(stream);
                        continue;
                    }
                    let (acceptor, app) = (acceptor.clone(), app.clone());
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(stream).await else {
                            return;
                        };
                        let svc = TowerToHyperService::new(app);
                        let _ = Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(tls), svc)
                            .await;
                    });
                }
            });
        }
        WebhookReceiver {
            url: format!("https://127.0.0.1:{port}/revocation"),
            ca_file,
            bodies,
            refused,
            up,
        }
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

/// Verifier settings using generated TLS material in `dir/cv_ca` (as `tls_dir = generate`
/// would) but trusting `extra_server_ca` too, and sending webhooks to `webhook_url`.
pub fn with_webhook(s: &mut VerifierSettings, dir: &Path, extra_server_ca: &Path, url: &str) {
    let cv_ca = dir.join("cv_ca");
    let g = keylime_pki::ensure_generated(&cv_ca, &s.ca, &s.server_sans, true).unwrap();
    s.tls = TlsSetup::Files {
        dir: cv_ca,
        server_cert: g.server_cert.clone(),
        server_key: g.server_key.clone(),
        trusted_client_ca: vec![g.ca_cert.clone()],
        client_cert: g.client_cert.clone().unwrap(),
        client_key: g.client_key.clone().unwrap(),
        trusted_server_ca: vec![g.ca_cert.clone(), extra_server_ca.to_owned()],
    };
    s.revocations.notifiers = vec!["agent".into(), "webhook".into()];
    s.revocations.webhook_url = url.to_owned();
}
