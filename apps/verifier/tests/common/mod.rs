//! Test support: an in-process verifier on port 0 (SQLite in a tempdir, generated TLS),
//! admin and anonymous HTTPS clients, status polling with a deadline, and a test agent: an
//! HTTPS server requiring the verifier's client certificate that answers
//! `/v2.x/quotes/integrity` with real quotes from a private swtpm. Like the Rust agent, it
//! answers an API version it does not serve with 400 "API version not supported" and
//! lists what it serves at `GET /version` (2.1–2.6 unless [`TestAgent::serve_only`]).
#![allow(dead_code)]

pub mod webhook;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use keylime_api::agent::QuoteResponse;
use keylime_api::{Envelope, encode_b64};
use keylime_testkit::Swtpm;
use keylime_tpm::{EkAlg, HashAlg, KeyHandle, PcrSelection, SignAlg, Tcti, Tpm, pcr_blob, quote};
use keylime_verifier::{PollTiming, RunningVerifier, VerifierSettings};
use serde_json::{Value, json};
use tokio::sync::watch;

/// An RSA key pair for tests (1024 bits: fast to generate in debug builds):
/// `(private PKCS#8 PEM, public SPKI PEM)`.
pub fn rsa_key_pair() -> (rsa::RsaPrivateKey, String, String) {
    use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap();
    let private = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let public = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    (key, private, public)
}

/// What the test agent received besides quote requests.
#[derive(Default)]
pub struct Received {
    /// V values decrypted from `/keys/vkey` POSTs.
    pub vkeys: Vec<Vec<u8>>,
    /// Bodies of `/notifications/revocation` POSTs.
    pub revocations: Vec<Value>,
}

/// Poll `cond` until it holds (panics with `what` after `limit`).
pub async fn wait_until(limit: Duration, what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
/// PCRs the test policy pins.
pub const POLICY_PCRS: [u8; 3] = [0, 1, 7];

pub fn fast_timing() -> PollTiming {
    PollTiming {
        quote_interval: Duration::from_millis(100),
        retry_interval: Duration::from_millis(50),
        max_retries: 2,
        exponential_backoff: false,
        request_timeout: Duration::from_secs(5),
    }
}

pub async fn start_verifier(dir: &Path) -> RunningVerifier {
    start_verifier_with(dir, |_| {}).await
}

/// Like [`start_verifier`], with `adjust` applied to the settings first.
pub async fn start_verifier_with(
    dir: &Path,
    adjust: impl FnOnce(&mut VerifierSettings),
) -> RunningVerifier {
    let mut s = VerifierSettings::new(dir);
    s.addr = "127.0.0.1:0".parse().unwrap();
    s.timing = fast_timing();
    s.max_body_bytes = 256 * 1024;
    adjust(&mut s);
    keylime_verifier::start(s).await.expect("verifier starts")
}

/// An HTTPS client of the verifier; `admin` presents the generated client certificate.
pub fn client(v: &RunningVerifier, admin: bool) -> reqwest::Client {
    keylime_pki::install_default_provider();
    let dir = &v.tls_dir;
    let ca = keylime_pki::load_certs(&dir.join("cacert.crt")).unwrap();
    let identity = admin.then(|| {
        (
            keylime_pki::load_certs(&dir.join("client-cert.crt")).unwrap(),
            keylime_pki::load_key(&dir.join("client-private.pem")).unwrap(),
        )
    });
    let config = keylime_pki::client_config(ca, identity).unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls((*config).clone())
        .build()
        .unwrap()
}

pub fn url(v: &RunningVerifier, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", v.addr.port())
}

/// Send and return (HTTP status, JSON body or Null).
pub async fn call(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request");
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Enrols `agent` as `id` with its usual add body; asserts 200.
pub async fn enrol(c: &reqwest::Client, v: &RunningVerifier, agent: &TestAgent, id: &str) {
    let (code, body) = call(
        c.post(url(v, &format!("/v2.6/agents/{id}")))
            .json(&agent.add_body()),
    )
    .await;
    assert_eq!(code, 200, "add {id}: {body}");
}

pub async fn status(c: &reqwest::Client, v: &RunningVerifier, id: &str) -> (u16, Value) {
    call(c.get(url(v, &format!("/v2.6/agents/{id}")))).await
}

/// Poll the status API until `pred` holds (panics with the last status after `limit`).
pub async fn wait_status(
    c: &reqwest::Client,
    v: &RunningVerifier,
    id: &str,
    limit: Duration,
    what: &str,
    pred: impl Fn(u16, &Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let (code, body) = status(c, v, id).await;
        if pred(code, &body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct TpmSide {
    tpm: Tpm,
    ak: KeyHandle,
    _swtpm: Swtpm,
}

/// A pull agent stand-in backed by swtpm.
pub struct TestAgent {
    pub port: u16,
    pub cert_pem: String,
    pub ak_tpm: Vec<u8>,
    tpm: Arc<Mutex<TpmSide>>,
    stop: watch::Sender<bool>,
    pub quotes_served: Arc<std::sync::atomic::AtomicU64>,
    /// The payload (NK) public key PEM bound into PCR 16.
    pub nk_pem: String,
    /// `/keys/vkey` and `/notifications/revocation` bodies received.
    pub received: Arc<Mutex<Received>>,
    /// HTTP status `/keys/vkey` answers with (200 by default).
    pub vkey_status: Arc<std::sync::atomic::AtomicU16>,
    /// API versions served (e.g. `"2.6"`), oldest first.
    versions: Arc<Mutex<Vec<String>>>,
    /// Quotes served per API version of the request path (e.g. `"2.1"`).
    quotes_by_version: Arc<Mutex<std::collections::HashMap<String, u64>>>,
    /// `GET /version` requests answered.
    pub version_requests: Arc<std::sync::atomic::AtomicU64>,
}

/// The 400 the Rust agent gives for a version it does not serve, or `None` if served.
fn reject_version(
    versions: &Mutex<Vec<String>>,
    ver: &str,
) -> Option<(axum::http::StatusCode, axum::Json<Value>)> {
    let v = ver.strip_prefix('v').unwrap_or(ver);
    if versions.lock().unwrap().iter().any(|s| s == v) {
        return None;
    }
    Some((
        axum::http::StatusCode::BAD_REQUEST,
        axum::Json(
            json!({"code": 400, "status": format!("API version not supported: {ver}"), "results": {}}),
        ),
    ))
}

impl TestAgent {
    /// Start serving; client certificates must chain to `verifier_ca`.
    pub async fn start(verifier_ca: &Path) -> TestAgent {
        let swtpm = Swtpm::start();
        let mut tpm = Tpm::open(&Tcti::parse(&swtpm.tcti_string()).unwrap()).expect("open TPM");
        let ek = tpm.create_ek(EkAlg::Rsa2048).expect("EK");
        let blob = tpm
            .create_ak(&ek, HashAlg::Sha256, SignAlg::RsaSsa)
            .expect("AK");
        let ak = tpm.load_ak(&ek, &blob).expect("load AK");
        let side = Arc::new(Mutex::new(TpmSide {
            tpm,
            ak,
            _swtpm: swtpm,
        }));
        Self::serve(side, blob.public.clone(), verifier_ca, 0).await
    }

    async fn serve(side: Arc<Mutex<TpmSide>>, ak_tpm: Vec<u8>, ca: &Path, port: u16) -> TestAgent {
        let (cert_pem, key_pem) =
            keylime_pki::self_signed_agent_cert("test-agent", &["127.0.0.1".into()]).unwrap();
        let chain =
            vec![keylime_pki::pem_or_der_to_der_list(cert_pem.as_bytes()).unwrap()[0].clone()];
        let chain = chain
            .into_iter()
            .map(keylime_pki::CertificateDer::from)
            .collect();
        let key = {
            use rustls_pki_types::pem::PemObject as _;
            keylime_pki::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap()
        };
        let cas = keylime_pki::load_certs(ca).unwrap();
        let config =
            keylime_pki::server_config(chain, key, keylime_pki::ClientAuth::Required(cas)).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (nk, _, nk_pem) = rsa_key_pair();
        let received = Arc::new(Mutex::new(Received::default()));
        let vkey_status = Arc::new(std::sync::atomic::AtomicU16::new(200));
        let versions: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(
            ["2.1", "2.2", "2.3", "2.4", "2.5", "2.6"]
                .map(String::from)
                .to_vec(),
        ));
        let quotes_by_version = Arc::new(Mutex::new(std::collections::HashMap::new()));
        let version_requests = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let extra = {
            let received = Arc::clone(&received);
            let received2 = Arc::clone(&received);
            let vkey_status = Arc::clone(&vkey_status);
            let versions = Arc::clone(&versions);
            let versions2 = Arc::clone(&versions);
            let version_requests = Arc::clone(&version_requests);
            axum::Router::new()
                .route(
                    "/version",
                    axum::routing::get(move || {
                        version_requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let list = versions2.lock().unwrap().clone();
                        let newest = list.last().cloned().unwrap_or_default();
                        async move {
                            axum::Json(json!({"code": 200, "status": "Success", "results": {
                                "supported_version": newest, "supported_versions": list}}))
                        }
                    }),
                )
                .route(
                    "/{ver}/keys/vkey",
                    axum::routing::post(
                        move |axum::extract::Path(ver): axum::extract::Path<String>,
                              axum::Json(body): axum::Json<Value>| {
                            let received = Arc::clone(&received);
                            let status = vkey_status.load(std::sync::atomic::Ordering::SeqCst);
                            let rejected = reject_version(&versions, &ver);
                            async move {
                                if let Some(r) = rejected {
                                    return r;
                                }
                                let b64 = body["encrypted_key"].as_str().unwrap_or_default();
                                let ct = keylime_api::decode_binary(b64).unwrap_or_default();
                                let v = nk
                                    .decrypt(rsa::Oaep::new::<sha1::Sha1>(), &ct)
                                    .unwrap_or_default();
                                received.lock().unwrap().vkeys.push(v);
                                (
                                    axum::http::StatusCode::from_u16(status).unwrap(),
                                    axum::Json(
                                        json!({"code": status, "status": "x", "results": null}),
                                    ),
                                )
                            }
                        },
                    ),
                )
                .route(
                    "/{ver}/notifications/revocation",
                    axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                        let received = Arc::clone(&received2);
                        async move {
                            received.lock().unwrap().revocations.push(body);
                            axum::Json(json!({"code": 200, "status": "Success", "results": null}))
                        }
                    }),
                )
        };
        let app = {
            let side = Arc::clone(&side);
            let served = Arc::clone(&served);
            let pem = nk_pem.clone();
            let versions = Arc::clone(&versions);
            let by_version = Arc::clone(&quotes_by_version);
            axum::Router::new().merge(extra).route(
                "/{ver}/quotes/integrity",
                axum::routing::get(
                    move |axum::extract::Path(ver): axum::extract::Path<String>,
                          axum::extract::Query(q): axum::extract::Query<
                        std::collections::HashMap<String, String>,
                    >| {
                        let side = Arc::clone(&side);
                        let served = Arc::clone(&served);
                        let pem = pem.clone();
                        let rejected = reject_version(&versions, &ver);
                        let by_version = Arc::clone(&by_version);
                        async move {
                            use axum::response::IntoResponse as _;
                            if let Some(r) = rejected {
                                return r.into_response();
                            }
                            let r = tokio::task::spawn_blocking(move || {
                                integrity_quote(&side, &q, &pem)
                            })
                            .await
                            .unwrap();
                            let v = ver.strip_prefix('v').unwrap_or(&ver).to_owned();
                            *by_version.lock().unwrap().entry(v).or_insert(0) += 1;
                            served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            axum::Json(Envelope::ok(r)).into_response()
                        }
                    },
                ),
            )
        };
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            let mut rx = stop_rx.clone();
            loop {
                let (stream, _) = tokio::select! {
                    a = listener.accept() => a.unwrap(),
                    _ = rx.wait_for(|s| *s) => return,
                };
                let acceptor = acceptor.clone();
                let app = app.clone();
                let mut conn_rx = stop_rx.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let svc = TowerToHyperService::new(app);
                    let builder = Builder::new(TokioExecutor::new());
                    let conn = builder.serve_connection(TokioIo::new(tls), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = conn_rx.wait_for(|s| *s) => {}
                    }
                });
            }
        });
        TestAgent {
            port,
            cert_pem,
            ak_tpm,
            tpm: side,
            stop,
            quotes_served: served,
            nk_pem,
            received,
            vkey_status,
            versions,
            quotes_by_version,
            version_requests,
        }
    }

    /// Serve only these API versions (e.g. `["2.1"]`) from now on.
    pub fn serve_only(&self, versions: &[&str]) {
        *self.versions.lock().unwrap() = versions.iter().map(|v| (*v).to_owned()).collect();
    }

    /// Quotes served on `/v{version}/quotes/integrity`.
    pub fn quotes_at(&self, version: &str) -> u64 {
        self.quotes_by_version
            .lock()
            .unwrap()
            .get(version)
            .copied()
            .unwrap_or(0)
    }

    /// Stop answering: the listener and every open connection close.
    pub fn go_offline(&self) {
        let _ = self.stop.send(true);
    }

    /// The `tpm_policy` pinning [`POLICY_PCRS`] to their current values.
    pub fn tpm_policy(&self) -> Value {
        let mut side = self.tpm.lock().unwrap();
        let sel = PcrSelection::new(HashAlg::Sha256, POLICY_PCRS).unwrap();
        let values = side.tpm.pcr_read(&sel).unwrap();
        let mut policy = serde_json::Map::new();
        for (pcr, v) in POLICY_PCRS.iter().zip(values) {
            policy.insert(pcr.to_string(), json!([hex::encode(v)]));
        }
        let mask = POLICY_PCRS.iter().fold(0u32, |m, p| m | (1 << p));
        policy.insert("mask".into(), json!(format!("{mask:#x}")));
        Value::Object(policy)
    }

    /// A quote made now over `mask` (PCR 16 always added), as `/quotes/integrity` answers.
    pub fn quote_now(&self, nonce: &str, mask: &str) -> QuoteResponse {
        let q = [
            ("nonce".to_string(), nonce.to_string()),
            ("mask".to_string(), mask.to_string()),
            ("partial".to_string(), "0".to_string()),
        ]
        .into_iter()
        .collect();
        integrity_quote(&self.tpm, &q, &self.nk_pem)
    }

    /// TPM2_Certify of the AK by itself over `qualifying_data` (a push agent's proof of
    /// possession): `(TPMS_ATTEST, TPMT_SIGNATURE)`.
    pub fn certify_ak(&self, qualifying_data: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut side = self.tpm.lock().unwrap();
        let s = &mut *side;
        let out = s
            .tpm
            .certify(&s.ak, &s.ak, qualifying_data, SignAlg::RsaSsa)
            .unwrap();
        (out.attest, out.signature)
    }

    /// Extend a PCR behind the verifier's back.
    pub fn tamper(&self, pcr: u8) {
        let mut side = self.tpm.lock().unwrap();
        side.tpm
            .pcr_extend(pcr, HashAlg::Sha256, &[0xAB; 32])
            .unwrap();
    }

    /// The add-agent body the upstream tenant would send for this agent.
    pub fn add_body(&self) -> Value {
        json!({
            "v": null,
            "cloudagent_ip": "127.0.0.1",
            "cloudagent_port": self.port,
            "tpm_policy": self.tpm_policy().to_string(),
            "runtime_policy": "", "runtime_policy_name": "", "runtime_policy_key": "",
            "mb_policy": null, "mb_policy_name": "",
            "ima_sign_verification_keys": "", "metadata": "{}", "revocation_key": "",
            "accept_tpm_hash_algs": ["sha512", "sha384", "sha256"],
            "accept_tpm_encryption_algs": ["ecc", "rsa"],
            "accept_tpm_signing_algs": ["ecschnorr", "rsassa"],
            "ak_tpm": encode_b64(&self.ak_tpm),
            "mtls_cert": self.cert_pem,
            "supported_version": "2.6",
        })
    }
}

fn integrity_quote(
    side: &Mutex<TpmSide>,
    q: &std::collections::HashMap<String, String>,
    pem: &str,
) -> QuoteResponse {
    let nonce = q.get("nonce").cloned().unwrap_or_default();
    let mask_text = q.get("mask").cloned().unwrap_or_default();
    let mask = u32::from_str_radix(mask_text.trim_start_matches("0x"), 16).unwrap_or(0) | 1 << 16;
    let partial = q.get("partial").map(String::as_str) == Some("1");
    let mut guard = side.lock().unwrap();
    let s = &mut *guard;
    s.tpm.pcr_reset(16).unwrap();
    s.tpm
        .pcr_extend(16, HashAlg::Sha256, &HashAlg::Sha256.digest(pem.as_bytes()))
        .unwrap();
    let sel = PcrSelection::from_mask(HashAlg::Sha256, mask);
    let out = s
        .tpm
        .quote(&s.ak, nonce.as_bytes(), &sel, SignAlg::RsaSsa)
        .unwrap();
    let values = s.tpm.pcr_read(&sel).unwrap();
    let blob = pcr_blob::encode(&sel, &values).unwrap();
    QuoteResponse {
        quote: quote::encode_quote_string(&out.attest, &out.signature, &blob),
        hash_alg: "sha256".into(),
        enc_alg: "rsa2048".into(),
        sign_alg: "rsassa".into(),
        pubkey: (!partial).then(|| pem.to_string()),
        ..QuoteResponse::default()
    }
}
