//! The public `POST /verify/evidence` under abuse, with its limits set through
//! `verifier.conf` options (`verify_evidence*`): an oversized body is refused (413), a body
//! that never finishes is cut off (408, connection closed), evaluations beyond the
//! configured number in flight get 429 with `Retry-After`, a runtime policy asking for too
//! much work is refused with the reason, and the route can be switched off or restricted
//! to clients with a certificate. After each, a real quote from swtpm is still verified.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{TestAgent, call, client, url};
use keylime_api::encode_b64;
use keylime_config::{CaConfig, Sources, VerifierConfig};
use keylime_verifier::{RunningVerifier, VerifierSettings};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Deadline for the verifier to react to a stalled body.
const REACT: Duration = Duration::from_secs(20);

/// A verifier configured by `[verifier]` options given as `KEYLIME_VERIFIER_*` overrides.
async fn start_with(dir: &Path, options: &[(&str, &str)]) -> RunningVerifier {
    let mut sources =
        Sources::isolated(dir.join("etc")).with_env("KEYLIME_DIR", dir.display().to_string());
    for (option, value) in options {
        sources = sources.with_env(
            format!("KEYLIME_VERIFIER_{}", option.to_uppercase()),
            *value,
        );
    }
    let cfg = VerifierConfig::load_from(&sources).expect("verifier options");
    let ca = CaConfig::load_from(&sources).expect("ca options");
    let mut settings = VerifierSettings::from_config(&cfg, &ca).expect("settings");
    settings.addr = "127.0.0.1:0".parse().unwrap();
    settings.timing = common::fast_timing();
    keylime_verifier::start(settings)
        .await
        .expect("verifier starts")
}

/// Evidence that passes: a fresh swtpm quote and a `tpm_policy` pinning its PCRs.
fn good_evidence(agent: &TestAgent) -> Value {
    let policy = agent.tpm_policy();
    let mask = policy["mask"].as_str().unwrap().to_string();
    let nonce = "nonce0123456789abcde";
    let q = agent.quote_now(nonce, &mask);
    json!({"type": "tpm", "data": {
        "quote": q.quote, "nonce": nonce, "hash_alg": "sha256",
        "tpm_ek": encode_b64(b"ek"), "tpm_ak": encode_b64(&agent.ak_tpm),
        "tpm_policy": policy.to_string(),
    }})
}

async fn assert_still_verifies(anon: &reqwest::Client, v: &RunningVerifier, evidence: &Value) {
    let (code, body) = call(anon.post(url(v, "/v2.6/verify/evidence")).json(evidence)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["results"]["valid"], true, "{body}");
}

/// A TLS connection to the verifier that has sent `head` and `body_part` of a request.
async fn stalled_request(
    v: &RunningVerifier,
    content_length: usize,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    keylime_pki::install_default_provider();
    let ca = keylime_pki::load_certs(&v.tls_dir.join("cacert.crt")).unwrap();
    let config: Arc<rustls::ClientConfig> = keylime_pki::client_config(ca, None).unwrap();
    let tcp = tokio::net::TcpStream::connect(v.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    let head = format!(
        "POST /v2.6/verify/evidence HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n{{\"type\""
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    tls
}

/// Repeats `request` until it answers `code` (or panics after `limit`), returning the
/// response.
async fn until_status(
    limit: Duration,
    code: u16,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> reqwest::Response {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let resp = request().send().await.expect("request");
        if resp.status().as_u16() == code {
            return resp;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {code} within {limit:?}: last {}",
            resp.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn runtime_policy(excludes: usize, digests: usize) -> String {
    let mut policy = keylime_ima::policy::RuntimePolicy::empty();
    policy.excludes = (0..excludes).map(|i| format!("/x{i}")).collect();
    for i in 0..digests {
        policy
            .digests
            .insert(format!("/bin/f{i}"), vec![format!("{i:064x}")]);
    }
    policy.to_json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_slow_and_overcomplex_evidence_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_with(
        dir.path(),
        &[
            ("verify_evidence_max_size", "1048576"),
            ("verify_evidence_timeout", "1"),
            ("verify_evidence_max_policy_entries", "100"),
        ],
    )
    .await;
    let anon = client(&v, false);
    let agent = TestAgent::start(&v.tls_dir.join("cacert.crt")).await;
    let evidence = good_evidence(&agent);
    let path = url(&v, "/v2.6/verify/evidence");
    assert_still_verifies(&anon, &v, &evidence).await;

    // 1. A body over the route's limit, though far under max_upload_size (100 MiB).
    let mut big = evidence.clone();
    big["data"]["padding"] = json!("x".repeat(1_100_000));
    let (code, body) = call(anon.post(&path).json(&big)).await;
    assert_eq!(code, 413, "{body}");
    assert_still_verifies(&anon, &v, &evidence).await;

    // 2. 20,000 excludes: refused before any is compiled, with the reason.
    let mut complex = evidence.clone();
    complex["data"]["runtime_policy"] = json!(runtime_policy(20_000, 0));
    let (code, body) = call(anon.post(&path).json(&complex)).await;
    assert_eq!(code, 400, "{body}");
    let reason = body["results"]["failures"][0]["context"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("20000 excludes") && reason.contains("verify_evidence_max_excludes"),
        "{body}"
    );
    // More digest entries than configured.
    complex["data"]["runtime_policy"] = json!(runtime_policy(0, 101));
    let (code, body) = call(anon.post(&path).json(&complex)).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.to_string().contains("101 digest entries"), "{body}");
    assert_still_verifies(&anon, &v, &evidence).await;

    // 3. A body that stops arriving: 408, then the verifier closes the connection.
    let mut stalled = stalled_request(&v, 5000).await;
    let mut response = Vec::new();
    let read = tokio::time::timeout(REACT, stalled.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(
        read.is_ok(),
        "the verifier neither answered nor closed a stalled body: {text:?}"
    );
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text:?}"
    );
    assert_still_verifies(&anon, &v, &evidence).await;
    let (code, _) = call(anon.get(url(&v, "/version"))).await;
    assert_eq!(code, 200);
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_beyond_the_limit_get_429_until_a_slot_frees() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_with(
        dir.path(),
        &[
            ("verify_evidence_max_in_flight", "1"),
            ("verify_evidence_timeout", "60"),
        ],
    )
    .await;
    let anon = client(&v, false);
    let agent = TestAgent::start(&v.tls_dir.join("cacert.crt")).await;
    let evidence = good_evidence(&agent);
    let path = url(&v, "/v2.6/verify/evidence");

    // The only slot is held by a request whose body is still arriving.
    let holder = stalled_request(&v, 5000).await;
    let resp = until_status(REACT, 429, || anon.post(&path).json(&evidence)).await;
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|h| h.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    assert!(retry_after.is_some_and(|s| s >= 1), "{:?}", resp.headers());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 429, "{body}");

    // Other routes are not affected meanwhile.
    let (code, _) = call(anon.get(url(&v, "/version"))).await;
    assert_eq!(code, 200);

    // The holder goes away: the slot is free again.
    drop(holder);
    let resp = until_status(REACT, 200, || anon.post(&path).json(&evidence)).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["results"]["valid"], true, "{body}");
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_can_be_disabled_or_restricted_to_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let off = start_with(&dir.path().join("off"), &[("verify_evidence", "disabled")]).await;
    let agent = TestAgent::start(&off.tls_dir.join("cacert.crt")).await;
    let evidence = good_evidence(&agent);
    for admin in [false, true] {
        let (code, _) = call(
            client(&off, admin)
                .post(url(&off, "/v2.6/verify/evidence"))
                .json(&evidence),
        )
        .await;
        assert_eq!(code, 404, "disabled route, admin = {admin}");
    }
    let (code, _) = call(client(&off, false).get(url(&off, "/version"))).await;
    assert_eq!(code, 200);
    off.shutdown().await;

    let mtls = start_with(&dir.path().join("mtls"), &[("verify_evidence", "mtls")]).await;
    let path = url(&mtls, "/v2.6/verify/evidence");
    let (code, body) = call(client(&mtls, false).post(&path).json(&evidence)).await;
    assert_eq!(code, 403, "{body}");
    assert!(body.to_string().contains("verify_evidence"), "{body}");
    let (code, body) = call(client(&mtls, true).post(&path).json(&evidence)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["results"]["valid"], true, "{body}");
    mtls.shutdown().await;
}
