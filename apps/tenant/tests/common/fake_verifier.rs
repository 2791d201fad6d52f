//! An in-process HTTPS fake of the verifier for the policy commands: `/version` (API 2.4,
//! so the tenant's negotiation shows in every path), the named-policy routes of PROTOCOL.md
//! §5.8 with upstream's codes (201, 204, 404, 409 — including the 409 of an mbpolicy PUT on
//! a missing name, Q16), and the add/status/delete agent routes `add` uses. Every request
//! except `/version` is recorded; queued canned responses take precedence, to feed the
//! tenant garbage.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use keylime_attestation::AcceptedAlgorithms;
use keylime_tenant::{ClientTls, Endpoint, RetryPolicy, TenantSettings};
use serde_json::{Value, json};

/// The API version the fake offers.
pub const FAKE_API: &str = "2.4";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the tenant sent JSON")
    }
}

/// A response to send instead of the fake's own.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: Option<&'static str>,
}

#[derive(Default)]
pub struct FakeState {
    requests: Mutex<Vec<Recorded>>,
    canned: Mutex<VecDeque<Canned>>,
    /// Runtime policies: name → the stored policy text (decoded from the request's b64).
    runtime: Mutex<BTreeMap<String, String>>,
    /// Measured-boot policies: name → the stored JSON text or null.
    mb: Mutex<BTreeMap<String, Option<String>>>,
    /// Names an agent uses (DELETE answers 409).
    in_use: Mutex<BTreeSet<String>>,
    /// Agents added: id → the add request body.
    agents: Mutex<BTreeMap<String, Value>>,
}

pub struct FakeVerifier {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub state: Arc<FakeState>,
    ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

/// The v2 envelope with upstream's member order (code, status, results); `results` is JSON
/// text so its member order is kept too.
fn envelope(code: u16, status: &str, results: impl std::fmt::Display) -> Response {
    let body = format!(
        r#"{{"code": {code}, "status": {}, "results": {results}}}"#,
        Value::String(status.into())
    );
    (
        StatusCode::from_u16(code).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

fn error(code: u16, status: &str) -> Response {
    envelope(code, status, json!({}))
}

fn created() -> Response {
    envelope(201, "Created", json!({}))
}

impl FakeVerifier {
    pub async fn start() -> FakeVerifier {
        let dir = tempfile::tempdir().unwrap();
        let tls = keylime_pki::ensure_generated(
            &dir.path().join("cv_ca"),
            &keylime_pki::CaOptions::default(),
            &["127.0.0.1".to_string(), "localhost".to_string()],
            true,
        )
        .unwrap();
        let chain = keylime_pki::load_certs(&tls.server_cert).unwrap();
        let key = keylime_pki::load_key(&tls.server_key).unwrap();
        let config = keylime_pki::server_config(chain, key, keylime_pki::ClientAuth::None).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(FakeState::default());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
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
        FakeVerifier {
            ca: tls.ca_cert,
            client_cert: tls.client_cert.unwrap(),
            client_key: tls.client_key.unwrap(),
            dir,
            port,
            state,
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new("127.0.0.1", self.port)
    }

    /// Settings of a tenant that talks to this fake (the registrar is a closed port).
    pub fn settings(&self) -> TenantSettings {
        let registrar_port = keylime_testkit::ports::closed();
        TenantSettings {
            verifier: self.endpoint(),
            verifier_id: None,
            registrar: Endpoint::new("127.0.0.1", registrar_port),
            tls: ClientTls {
                cert: self.client_cert.clone(),
                key: self.client_key.clone(),
                trusted_server_ca: vec![self.ca.clone()],
            },
            accepted_algorithms: AcceptedAlgorithms::default(),
            require_ek_cert: false,
            tpm_cert_store: self.dir.path().join("no_store"),
            ek_check_script: None,
            max_payload_size: 1 << 20,
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy {
                max_retries: 5,
                retry_interval: Duration::from_millis(50),
                exponential_backoff: false,
            },
        }
    }

    /// `settings` of another deployment with this fake as its verifier.
    pub fn as_verifier_of(&self, mut settings: TenantSettings) -> TenantSettings {
        settings.verifier = self.endpoint();
        settings.tls.trusted_server_ca.push(self.ca.clone());
        settings
    }

    pub fn tenant(&self) -> keylime_tenant::Tenant {
        keylime_tenant::Tenant::new(self.settings()).unwrap()
    }

    /// Answer the next request (other than `/version`) with this instead.
    pub fn push_canned(&self, status: u16, body: &[u8], content_type: Option<&'static str>) {
        self.state.canned.lock().unwrap().push_back(Canned {
            status,
            body: body.to_vec(),
            content_type,
        });
    }

    pub fn mark_in_use(&self, name: &str) {
        self.state.in_use.lock().unwrap().insert(name.into());
    }

    /// Every recorded request, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn last_request(&self) -> Recorded {
        self.requests().last().cloned().expect("a request was made")
    }

    pub fn clear_requests(&self) {
        self.state.requests.lock().unwrap().clear();
    }

    pub fn stored_runtime_policy(&self, name: &str) -> Option<String> {
        self.state.runtime.lock().unwrap().get(name).cloned()
    }

    pub fn stored_mb_policy(&self, name: &str) -> Option<Option<String>> {
        self.state.mb.lock().unwrap().get(name).cloned()
    }

    pub fn added_agent(&self, id: &str) -> Option<Value> {
        self.state.agents.lock().unwrap().get(id).cloned()
    }

    /// Run the binary against this fake: (exit code, stdout, stderr).
    pub fn run_cli(&self, args: &[&str]) -> (i32, String, String) {
        let conf = self.dir.path().join("tenant.conf");
        let s = self.settings();
        let text = format!(
            "[tenant]\nverifier_ip = 127.0.0.1\nverifier_port = {}\nregistrar_ip = 127.0.0.1\nregistrar_port = {}\ntls_dir = {}\nclient_cert = default\nclient_key = default\ntrusted_server_ca = ['{}']\nrequire_ek_cert = False\nretry_interval = 0.05\nmax_retries = 3\nexponential_backoff = False\nrequest_timeout = 10\nmb_refstate = {}\n",
            self.port,
            s.registrar.port,
            self.dir.path().join("cv_ca").display(),
            self.ca.display(),
            keylime_testkit::testdata("mbpolicy/keylime/example_reference_state.json").display(),
        );
        std::fs::write(&conf, text).unwrap();
        super::run_cli_with(&conf, self.dir.path(), args)
    }
}

async fn handle(
    State(state): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if path == "/version" {
        return envelope(
            200,
            "Success",
            json!({"current_version": FAKE_API, "supported_versions": ["2.1", "2.2", "2.3", FAKE_API]}),
        );
    }
    state.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        body: body.to_vec(),
    });
    if let Some(c) = state.canned.lock().unwrap().pop_front() {
        let mut resp = (StatusCode::from_u16(c.status).unwrap(), c.body).into_response();
        if let Some(ct) = c.content_type {
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(ct));
        }
        return resp;
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let [version, collection, rest @ ..] = segments.as_slice() else {
        return error(404, "Not Found");
    };
    if *version != format!("v{FAKE_API}") {
        return error(400, "API version not supported");
    }
    let name = rest.first().copied().unwrap_or("");
    match *collection {
        "allowlists" => runtime_route(&state, &method, name, &body),
        "mbpolicies" => mb_route(&state, &method, name, &body),
        "agents" => agent_route(&state, &method, name, &body),
        _ => error(404, "Not Found"),
    }
}

fn runtime_route(state: &FakeState, method: &Method, name: &str, body: &[u8]) -> Response {
    let mut store = state.runtime.lock().unwrap();
    match (method.as_str(), name) {
        ("GET", "") => envelope(
            200,
            "Success",
            json!({"runtimepolicy names": store.keys().collect::<Vec<_>>()}),
        ),
        ("GET", n) => match store.get(n) {
            Some(text) => envelope(
                200,
                "Success",
                format!(
                    r#"{{"name": {}, "tmp_policy": null, "runtime_policy": {}}}"#,
                    Value::from(n),
                    Value::from(text.as_str())
                ),
            ),
            None => error(404, &format!("Runtime policy {n} not found")),
        },
        ("POST" | "PUT", n) if !n.is_empty() => {
            let exists = store.contains_key(n);
            if method == Method::POST && exists {
                return error(409, &format!("Runtime policy with name {n} already exists"));
            }
            if method == Method::PUT && !exists {
                return error(404, &format!("Runtime policy {n} not found"));
            }
            let Ok(doc) = serde_json::from_slice::<Value>(body) else {
                return error(400, "Invalid JSON");
            };
            let Some(text) = doc["runtime_policy"]
                .as_str()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|t| serde_json::from_str::<Value>(t).is_ok())
            else {
                return error(400, "Runtime policy is not valid JSON!");
            };
            store.insert(n.to_string(), text);
            created()
        }
        ("DELETE", n) if !n.is_empty() => delete_named(state, &mut store, n, "Runtime policy"),
        _ => error(405, "Method Not Allowed"),
    }
}

fn mb_route(state: &FakeState, method: &Method, name: &str, body: &[u8]) -> Response {
    let mut store = state.mb.lock().unwrap();
    match (method.as_str(), name) {
        ("GET", "") => envelope(
            200,
            "Success",
            json!({"mbpolicy names": store.keys().collect::<Vec<_>>()}),
        ),
        ("GET", n) => match store.get(n) {
            Some(p) => envelope(
                200,
                "Success",
                format!(
                    r#"{{"name": {}, "mb_policy": {}}}"#,
                    Value::from(n),
                    json!(p)
                ),
            ),
            None => error(404, &format!("Measured boot policy {n} not found")),
        },
        ("POST" | "PUT", n) if !n.is_empty() => {
            let exists = store.contains_key(n);
            if method == Method::POST && exists {
                return error(
                    409,
                    &format!("Measured boot policy with name {n} already exists"),
                );
            }
            if method == Method::PUT && !exists {
                // Upstream answers 409 here (Q16).
                return error(
                    409,
                    &format!("Measured boot policy with name {n} does not already exist"),
                );
            }
            let Ok(doc) = serde_json::from_slice::<Value>(body) else {
                return error(400, "Invalid JSON");
            };
            let policy = match &doc["mb_policy"] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                _ => return error(400, "mb_policy must be a string or null"),
            };
            store.insert(n.to_string(), policy);
            created()
        }
        ("DELETE", n) if !n.is_empty() => {
            delete_named(state, &mut store, n, "Measured boot policy")
        }
        _ => error(405, "Method Not Allowed"),
    }
}

fn delete_named<V>(
    state: &FakeState,
    store: &mut BTreeMap<String, V>,
    name: &str,
    what: &str,
) -> Response {
    if !store.contains_key(name) {
        return error(404, &format!("{what} {name} not found"));
    }
    if state.in_use.lock().unwrap().contains(name) {
        return error(
            409,
            &format!("Can't delete {what} as it's currently in use by agent some-agent"),
        );
    }
    store.remove(name);
    StatusCode::NO_CONTENT.into_response()
}

fn agent_route(state: &FakeState, method: &Method, id: &str, body: &[u8]) -> Response {
    let mut agents = state.agents.lock().unwrap();
    match method.as_str() {
        "POST" => {
            if agents.contains_key(id) {
                return error(409, "Agent of uuid already exists");
            }
            let Ok(doc) = serde_json::from_slice::<Value>(body) else {
                return error(400, "Invalid JSON");
            };
            agents.insert(id.to_string(), doc);
            envelope(200, "Success", json!({}))
        }
        "GET" => match agents.get(id) {
            Some(_) => envelope(200, "Success", json!({"operational_state": 3})),
            None => error(404, "agent id not found"),
        },
        "DELETE" => match agents.remove(id) {
            Some(_) => envelope(200, "Success", json!({})),
            None => error(404, "agent id not found"),
        },
        _ => error(405, "Method Not Allowed"),
    }
}
