//! Test support: an in-process registrar and verifier on port 0, each with its own
//! generated CA (the tenant trusts both through a `trusted_server_ca` list and the registrar
//! trusts the verifier CA's client certificate), a `tenant.conf` for the binary, and a
//! swtpm-backed HTTPS pull agent that registers itself (real MakeCredential /
//! ActivateCredential) and answers `/version`, identity and integrity quotes, `/keys/ukey`,
//! `/keys/vkey` and `/keys/verify`; [`fake_verifier`] is a recording HTTPS fake of the
//! verifier's policy and agent routes.
#![allow(dead_code)]

pub mod fake_verifier;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Json, Query};
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use keylime_api::agent::{QuoteResponse, UkeyRequest, VkeyRequest};
use keylime_api::{Envelope, encode_b64};
use keylime_attestation::AcceptedAlgorithms;
use keylime_payload::BootstrapKey;
use keylime_registrar::{RegistrarSettings, RunningRegistrar};
use keylime_tenant::{ClientTls, Endpoint, RetryPolicy, TenantSettings};
use keylime_testkit::Swtpm;
use keylime_tpm::{
    CredentialBlob, EkAlg, HashAlg, KeyHandle, PcrSelection, SignAlg, Tcti, Tpm, pcr_blob, quote,
};
use keylime_verifier::{PollTiming, RunningVerifier, VerifierSettings};
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{Value, json};

pub const LIMIT: Duration = Duration::from_secs(30);

/// Registrar + verifier with separate CAs.
pub struct Services {
    pub dir: tempfile::TempDir,
    pub registrar: RunningRegistrar,
    pub verifier: RunningVerifier,
}

impl Services {
    pub async fn start() -> Services {
        let dir = tempfile::tempdir().unwrap();
        let mut vs = VerifierSettings::new(&dir.path().join("verifier"));
        std::fs::create_dir_all(dir.path().join("verifier")).unwrap();
        vs.addr = "127.0.0.1:0".parse().unwrap();
        vs.timing = PollTiming {
            quote_interval: Duration::from_millis(200),
            retry_interval: Duration::from_millis(50),
            max_retries: 2,
            exponential_backoff: false,
            request_timeout: Duration::from_secs(5),
        };
        let verifier = keylime_verifier::start(vs).await.expect("verifier starts");

        let reg_ca = dir.path().join("reg_ca");
        let generated = keylime_pki::ensure_generated(
            &reg_ca,
            &keylime_pki::CaOptions::default(),
            &["127.0.0.1".to_string(), "localhost".to_string()],
            false,
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("registrar")).unwrap();
        let mut rs = RegistrarSettings::new(&dir.path().join("registrar"));
        rs.http_addr = "127.0.0.1:0".parse().unwrap();
        rs.https_addr = "127.0.0.1:0".parse().unwrap();
        rs.require_ek_cert = false;
        rs.tpm_cert_store = None;
        rs.tls = keylime_registrar::TlsSetup::Files {
            dir: reg_ca.clone(),
            server_cert: generated.server_cert,
            server_key: generated.server_key,
            trusted_client_ca: vec![generated.ca_cert, verifier.tls_dir.join("cacert.crt")],
        };
        let registrar = keylime_registrar::start(rs)
            .await
            .expect("registrar starts");
        Services {
            dir,
            registrar,
            verifier,
        }
    }

    pub fn cv_ca(&self) -> PathBuf {
        self.verifier.tls_dir.join("cacert.crt")
    }

    pub fn reg_ca(&self) -> PathBuf {
        self.dir.path().join("reg_ca").join("cacert.crt")
    }

    pub fn settings(&self) -> TenantSettings {
        TenantSettings {
            verifier: Endpoint::new("127.0.0.1", self.verifier.addr.port()),
            verifier_id: None,
            registrar: Endpoint::new("127.0.0.1", self.registrar.https_addr.port()),
            tls: ClientTls {
                cert: self.verifier.tls_dir.join("client-cert.crt"),
                key: self.verifier.tls_dir.join("client-private.pem"),
                trusted_server_ca: vec![self.cv_ca(), self.reg_ca()],
            },
            accepted_algorithms: AcceptedAlgorithms::default(),
            require_ek_cert: false,
            tpm_cert_store: self.dir.path().join("no_store"),
            ek_check_script: None,
            max_payload_size: 1 << 20,
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy {
                max_retries: 10,
                retry_interval: Duration::from_millis(200),
                exponential_backoff: false,
            },
        }
    }

    pub fn tenant(&self) -> keylime_tenant::Tenant {
        keylime_tenant::Tenant::new(self.settings()).unwrap()
    }

    /// A `tenant.conf` equivalent to [`Services::settings`], for the binary.
    pub fn write_tenant_conf(&self) -> PathBuf {
        let path = self.dir.path().join("tenant.conf");
        let text = format!(
            "[tenant]\nverifier_ip = 127.0.0.1\nverifier_port = {}\nregistrar_ip = 127.0.0.1\nregistrar_port = {}\ntls_dir = {}\nclient_cert = default\nclient_key = default\ntrusted_server_ca = ['{}', '{}']\nrequire_ek_cert = False\nretry_interval = 0.2\nmax_retries = 10\nexponential_backoff = False\nrequest_timeout = 10\n",
            self.verifier.addr.port(),
            self.registrar.https_addr.port(),
            self.verifier.tls_dir.display(),
            self.cv_ca().display(),
            self.reg_ca().display(),
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Run the binary with this deployment's `tenant.conf`: (exit code, stdout, stderr).
    pub fn run_cli(&self, args: &[&str]) -> (i32, String, String) {
        let conf = self.write_tenant_conf();
        run_cli_with(&conf, self.dir.path(), args)
    }
}

pub fn run_cli_with(conf: &Path, keylime_dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keylime_tenant"))
        .args(args)
        .env("KEYLIME_TENANT_CONFIG", conf)
        .env("KEYLIME_DIR", keylime_dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run keylime_tenant");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct TpmSide {
    tpm: Tpm,
    ak: KeyHandle,
    /// The AK identity quotes are signed with (another AK in the wrong-AK scenario).
    quote_ak: KeyHandle,
    _swtpm: Swtpm,
}

/// What the agent received through `/keys/*`.
#[derive(Default)]
pub struct Keys {
    pub u: Option<Vec<u8>>,
    pub auth_tag: Option<String>,
    pub payload: Option<String>,
    pub k: Option<BootstrapKey>,
    pub decrypted_payload: Option<Vec<u8>>,
    pub ukey_posts: u32,
}

pub struct TestAgent {
    pub id: String,
    pub port: u16,
    pub cert_pem: String,
    pub keys: Arc<Mutex<Keys>>,
    pub identity_quotes: Arc<Mutex<u32>>,
}

struct AgentState {
    side: Mutex<TpmSide>,
    pubkey_pem: String,
    nk: rsa::RsaPrivateKey,
    keys: Arc<Mutex<Keys>>,
    agent_id: String,
    identity_quotes: Arc<Mutex<u32>>,
}

impl TestAgent {
    /// Start an agent registered (and activated) at `svc`'s registrar as `id`. With
    /// `wrong_ak`, identity quotes are signed by an AK other than the registered one.
    pub async fn start(svc: &Services, id: &str, wrong_ak: bool) -> TestAgent {
        let swtpm = Swtpm::start();
        let mut tpm = Tpm::open(&Tcti::parse(&swtpm.tcti_string()).unwrap()).expect("open TPM");
        let ek = tpm.create_ek(EkAlg::Rsa2048).expect("EK");
        let blob = tpm
            .create_ak(&ek, HashAlg::Sha256, SignAlg::RsaSsa)
            .expect("AK");
        let ak = tpm.load_ak(&ek, &blob).expect("load AK");
        let quote_ak = if wrong_ak {
            let other = tpm
                .create_ak(&ek, HashAlg::Sha256, SignAlg::RsaSsa)
                .unwrap();
            tpm.load_ak(&ek, &other).unwrap()
        } else {
            ak.clone()
        };

        let (cert_pem, key_pem) =
            keylime_pki::self_signed_agent_cert(id, &["127.0.0.1".into()]).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();

        // Register and activate over the registrar's plain HTTP port.
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{}", svc.registrar.http_addr.port());
        let resp: Value = http
            .post(format!("{base}/v2.6/agents/{id}"))
            .json(&json!({"ek_tpm": encode_b64(&ek.public.to_tpm2b()), "aik_tpm": encode_b64(&blob.public),
                "ekcert": "", "iak_cert": null, "idevid_cert": null, "ip": "127.0.0.1", "port": port,
                "mtls_cert": cert_pem}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let blob_b64 = resp["results"]["blob"].as_str().expect("registration blob");
        let cred_blob =
            CredentialBlob::from_tpm2_tools(&keylime_api::decode_binary(blob_b64).unwrap())
                .unwrap();
        let cred = tpm
            .activate_credential(&ak, &ek, &cred_blob.id_object, &cred_blob.encrypted_secret)
            .expect("activate credential");
        let tag = keylime_api::activation_auth_tag(&cred, id);
        let code = http
            .put(format!("{base}/v2.6/agents/{id}"))
            .json(&json!({ "auth_tag": tag }))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(code, 200, "activation");

        let nk = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let pubkey_pem = nk
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let keys = Arc::new(Mutex::new(Keys::default()));
        let identity_quotes = Arc::new(Mutex::new(0));
        let state = Arc::new(AgentState {
            side: Mutex::new(TpmSide {
                tpm,
                ak,
                quote_ak,
                _swtpm: swtpm,
            }),
            pubkey_pem,
            nk,
            keys: Arc::clone(&keys),
            agent_id: id.into(),
            identity_quotes: Arc::clone(&identity_quotes),
        });
        serve(listener, state, &cert_pem, &key_pem, &svc.cv_ca());
        TestAgent {
            id: id.into(),
            port,
            cert_pem,
            keys,
            identity_quotes,
        }
    }
}

fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AgentState>,
    cert_pem: &str,
    key_pem: &str,
    client_ca: &Path,
) {
    let chain = keylime_pki::pem_or_der_to_der_list(cert_pem.as_bytes())
        .unwrap()
        .into_iter()
        .map(keylime_pki::CertificateDer::from)
        .collect();
    let key = {
        use rustls_pki_types::pem::PemObject as _;
        keylime_pki::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap()
    };
    let cas = keylime_pki::load_certs(client_ca).unwrap();
    let config =
        keylime_pki::server_config(chain, key, keylime_pki::ClientAuth::Required(cas)).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let s1 = Arc::clone(&state);
    let s2 = Arc::clone(&state);
    let s3 = Arc::clone(&state);
    let s4 = Arc::clone(&state);
    let s5 = Arc::clone(&state);
    let app = axum::Router::new()
        .route(
            "/version",
            get(|| async {
                Json(Envelope::ok(json!({"supported_version": "2.6",
                    "supported_versions": ["2.1", "2.2", "2.3", "2.4", "2.5", "2.6"]})))
            }),
        )
        .route(
            "/{ver}/quotes/identity",
            get(move |Query(q): Query<HashMap<String, String>>| {
                let s = Arc::clone(&s1);
                async move {
                    *s.identity_quotes.lock().unwrap() += 1;
                    let r = tokio::task::spawn_blocking(move || quote_for(&s, &q, true))
                        .await
                        .unwrap();
                    Json(Envelope::ok(r))
                }
            }),
        )
        .route(
            "/{ver}/quotes/integrity",
            get(move |Query(q): Query<HashMap<String, String>>| {
                let s = Arc::clone(&s2);
                async move {
                    let r = tokio::task::spawn_blocking(move || quote_for(&s, &q, false))
                        .await
                        .unwrap();
                    Json(Envelope::ok(r))
                }
            }),
        )
        .route(
            "/{ver}/keys/ukey",
            post(move |Json(body): Json<UkeyRequest>| {
                let s = Arc::clone(&s3);
                async move {
                    let enc = keylime_api::decode_binary(&body.encrypted_key).unwrap();
                    let u = keylime_payload::rsa_oaep_sha1_decrypt(&s.nk, &enc).unwrap();
                    let mut k = s.keys.lock().unwrap();
                    k.u = Some(u);
                    k.auth_tag = Some(body.auth_tag);
                    k.payload = body.payload;
                    k.ukey_posts += 1;
                    Json(Envelope::ok(Value::Null))
                }
            }),
        )
        .route(
            "/{ver}/keys/vkey",
            post(move |Json(body): Json<VkeyRequest>| {
                let s = Arc::clone(&s4);
                async move {
                    let enc = keylime_api::decode_binary(&body.encrypted_key).unwrap();
                    let v = keylime_payload::rsa_oaep_sha1_decrypt(&s.nk, &enc).unwrap();
                    let mut keys = s.keys.lock().unwrap();
                    if let (Some(u), Some(tag)) = (keys.u.clone(), keys.auth_tag.clone()) {
                        let k = keylime_payload::combine(&u, &v).unwrap();
                        if keylime_payload::verify_auth_tag(&k, &s.agent_id, &tag) {
                            if let Some(p) = &keys.payload {
                                keys.decrypted_payload =
                                    Some(keylime_payload::decrypt_payload(&k, p).unwrap());
                            }
                            keys.k = Some(k);
                        }
                    }
                    Json(Envelope::ok(Value::Null))
                }
            }),
        )
        .route(
            "/{ver}/keys/verify",
            get(move |Query(q): Query<HashMap<String, String>>| {
                let s = Arc::clone(&s5);
                async move {
                    let keys = s.keys.lock().unwrap();
                    match (&keys.k, q.get("challenge")) {
                        (Some(k), Some(c)) => (
                            axum::http::StatusCode::OK,
                            Json(json!({"code": 200, "status": "Success",
                                "results": {"hmac": keylime_payload::key_auth_tag(k, c)}})),
                        ),
                        _ => (
                            axum::http::StatusCode::BAD_REQUEST,
                            Json(json!({"code": 400, "status": "Bootstrap key not yet available.", "results": {}})),
                        ),
                    }
                }
            }),
        );
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
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

fn quote_for(s: &AgentState, q: &HashMap<String, String>, identity: bool) -> QuoteResponse {
    let nonce = q.get("nonce").cloned().unwrap_or_default();
    let mask = if identity {
        1 << 16
    } else {
        let m = q.get("mask").cloned().unwrap_or_default();
        u32::from_str_radix(m.trim_start_matches("0x"), 16).unwrap_or(0) | 1 << 16
    };
    let partial = q.get("partial").map(String::as_str) == Some("1");
    let mut guard = s.side.lock().unwrap();
    let side = &mut *guard;
    side.tpm.pcr_reset(16).unwrap();
    side.tpm
        .pcr_extend(
            16,
            HashAlg::Sha256,
            &HashAlg::Sha256.digest(s.pubkey_pem.as_bytes()),
        )
        .unwrap();
    let sel = PcrSelection::from_mask(HashAlg::Sha256, mask);
    let key = if identity { &side.quote_ak } else { &side.ak };
    let out = side
        .tpm
        .quote(key, nonce.as_bytes(), &sel, SignAlg::RsaSsa)
        .unwrap();
    let values = side.tpm.pcr_read(&sel).unwrap();
    let blob = pcr_blob::encode(&sel, &values).unwrap();
    QuoteResponse {
        quote: quote::encode_quote_string(&out.attest, &out.signature, &blob),
        hash_alg: "sha256".into(),
        enc_alg: "rsa2048".into(),
        sign_alg: "rsassa".into(),
        pubkey: (identity || !partial).then(|| s.pubkey_pem.clone()),
        ..QuoteResponse::default()
    }
}

/// Poll `f` until it returns `Some` (panics with `what` after [`LIMIT`]).
pub async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What upstream's tenant printed in `scenario`, recorded by the interop suite against
/// upstream's registrar and verifier (`interop/transcripts/upstream_tenant.txt`, which
/// pairing 2 checks against upstream on every run): the source of the lines these tests
/// expect. Masked values read `<name>`.
pub fn upstream_lines(scenario: &str) -> Vec<&'static str> {
    const TRANSCRIPT: &str = include_str!("../../../../interop/transcripts/upstream_tenant.txt");
    let mut lines = TRANSCRIPT.lines();
    let heading = format!("## {scenario}");
    assert!(
        lines.any(|l| l == heading),
        "no scenario {scenario:?} in the recorded transcript"
    );
    lines
        .skip_while(|l| l.starts_with("$ ") || l.starts_with("(exit "))
        .take_while(|l| !l.starts_with("## "))
        .collect()
}

/// [`upstream_lines`] as printed (a newline after each line), with the names the interop
/// suite used replaced by a test's (`(from, to)` pairs).
pub fn upstream_printed(scenario: &str, names: &[(&str, &str)]) -> String {
    upstream_lines(scenario)
        .iter()
        .map(|l| {
            let line = names
                .iter()
                .fold((*l).to_owned(), |l, (from, to)| l.replace(from, to));
            format!("{line}\n")
        })
        .collect()
}
