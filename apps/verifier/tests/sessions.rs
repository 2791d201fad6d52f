//! Push agents' proof-of-possession sessions (`/v3[.0]/sessions`) against the real
//! verifier, with real TPM2_Certify proofs from swtpm: a good session issues a token that
//! `authenticate` accepts for its agent only; hostile requests are refused with a reason,
//! store nothing, and the verifier keeps serving; session creation is rate limited.

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{TestAgent, call, client, enrol, start_verifier_with, url};
use keylime_verifier::push::token::{AuthError, authenticate};
use keylime_verifier::{RunningVerifier, VerifierSettings};
use serde_json::{Value, json};

fn create_body(agent_id: &str) -> Value {
    json!({"data": {"type": "session", "attributes": {"agent_id": agent_id,
        "authentication_supported": [{"authentication_class": "pop", "authentication_type": "tpm_pop"}]}}})
}

fn prove_body(sid: &str, agent_id: &str, message: &[u8], signature: &[u8]) -> Value {
    json!({"data": {"type": "session", "id": sid, "attributes": {"agent_id": agent_id,
        "authentication_provided": [{"authentication_class": "pop", "authentication_type": "tpm_pop",
            "data": {"message": STANDARD.encode(message), "signature": STANDARD.encode(signature)}}]}}})
}

/// Create a session for `agent_id`: `(session id, challenge bytes)`.
async fn create(c: &reqwest::Client, v: &RunningVerifier, agent_id: &str) -> (String, Vec<u8>) {
    let (code, body) = call(c.post(url(v, "/v3/sessions")).json(&create_body(agent_id))).await;
    assert_eq!(code, 200, "{body}");
    let sid = body["data"]["id"].as_str().unwrap().to_owned();
    let challenge = body["data"]["attributes"]["authentication_requested"][0]["chosen_parameters"]
        ["challenge"]
        .as_str()
        .unwrap();
    (sid, STANDARD.decode(challenge).unwrap())
}

async fn prove(c: &reqwest::Client, v: &RunningVerifier, sid: &str, body: &Value) -> (u16, Value) {
    call(c.patch(url(v, &format!("/v3.0/sessions/{sid}"))).json(body)).await
}

/// Prove session `sid` of agent "A" with `(m, s)` and expect a 401 failed evaluation whose
/// reason contains `reason`, without a token.
async fn assert_refused(
    c: &reqwest::Client,
    v: &RunningVerifier,
    sid: &str,
    m: &[u8],
    s: &[u8],
    reason: &str,
) {
    let (code, body) = prove(c, v, sid, &prove_body(sid, "A", m, s)).await;
    assert_eq!(code, 401, "{body}");
    assert_eq!(body["data"]["attributes"]["evaluation"], "fail");
    let said = body["meta"]["reason"].as_str().unwrap_or_default();
    assert!(said.contains(reason), "{body} lacks {reason}");
    assert!(body["data"]["attributes"].get("token").is_none());
}

async fn tokens(v: &RunningVerifier, agent_id: &str) -> i64 {
    v.store()
        .verifier()
        .session_token_count(agent_id)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proof_of_possession_issues_a_token_and_refuses_forgeries() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_verifier_with(dir.path(), |s| s.sessions.per_agent = 100).await;
    let ca = v.tls_dir.join("cacert.crt");
    let agent = TestAgent::start(&ca).await;
    let other_tpm = TestAgent::start(&ca).await;
    let admin = client(&v, true);
    let c = client(&v, false);
    enrol(&admin, &v, &agent, "A").await;
    enrol(&admin, &v, &other_tpm, "B").await;

    // A forged Certify: made by another TPM's AK over the right challenge.
    let (sid, challenge) = create(&c, &v, "A").await;
    let (m, s) = other_tpm.certify_ak(&challenge);
    assert_refused(&c, &v, &sid, &m, &s, "not the agent's AK").await;

    // The right TPM over the wrong nonce.
    let (sid, challenge) = create(&c, &v, "A").await;
    let mut wrong = challenge.clone();
    wrong[0] ^= 1;
    let (m, s) = agent.certify_ak(&wrong);
    assert_refused(&c, &v, &sid, &m, &s, "challenge").await;

    // A signature that does not match the message (message of one proof, signature of another).
    let (sid, challenge) = create(&c, &v, "A").await;
    let (m, _) = agent.certify_ak(&challenge);
    let (_, s) = agent.certify_ak(&[7u8; 16]);
    assert_refused(&c, &v, &sid, &m, &s, "does not verify").await;
    assert_eq!(tokens(&v, "A").await, 0, "no token after refused proofs");

    // Another agent's id in the PATCH: refused, and the session is still answerable.
    let (sid, challenge) = create(&c, &v, "A").await;
    let (m, s) = agent.certify_ak(&challenge);
    let (code, body) = prove(&c, &v, &sid, &prove_body(&sid, "B", &m, &s)).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["errors"][0]["detail"], "Agent ID mismatch");
    assert_eq!(tokens(&v, "B").await, 0);

    // The good proof.
    let (code, body) = prove(&c, &v, &sid, &prove_body(&sid, "A", &m, &s)).await;
    assert_eq!(code, 200, "{body}");
    let attrs = &body["data"]["attributes"];
    assert_eq!(attrs["evaluation"], "pass");
    let token = attrs["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&format!("{sid}.")), "{token}");
    assert!(
        attrs["token_expires_at"]
            .as_str()
            .unwrap()
            .ends_with("+00:00")
    );
    assert_eq!(tokens(&v, "A").await, 1);
    authenticate(v.store(), &token, "A").await.unwrap();
    assert!(matches!(
        authenticate(v.store(), &token, "B").await,
        Err(AuthError::OtherAgent)
    ));
    assert!(matches!(
        authenticate(v.store(), &format!("{token}x"), "A").await,
        Err(AuthError::Unknown)
    ));

    // Replaying the same proof (and nonce) on the answered session: unknown session.
    let (code, body) = prove(&c, &v, &sid, &prove_body(&sid, "A", &m, &s)).await;
    assert_eq!(code, 404, "{body}");
    assert_eq!(body["errors"][0]["detail"], "Session not found");
    // The same proof against a fresh session: its challenge differs.
    let (sid2, _) = create(&c, &v, "A").await;
    let (code, body) = prove(&c, &v, &sid2, &prove_body(&sid2, "A", &m, &s)).await;
    assert_eq!(code, 401, "{body}");

    // A second good session replaces the first token.
    let (sid3, challenge) = create(&c, &v, "A").await;
    let (m, s) = agent.certify_ak(&challenge);
    let (code, body) = prove(&c, &v, &sid3, &prove_body(&sid3, "A", &m, &s)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(tokens(&v, "A").await, 1);
    assert!(matches!(
        authenticate(v.store(), &token, "A").await,
        Err(AuthError::Unknown)
    ));

    // An agent that is not enrolled gets a failed evaluation and no token.
    let (sid, challenge) = create(&c, &v, "C").await;
    let (m, s) = agent.certify_ak(&challenge);
    let (code, body) = prove(&c, &v, &sid, &prove_body(&sid, "C", &m, &s)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["attributes"]["evaluation"], "fail");
    assert_eq!(tokens(&v, "C").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_session_requests_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_verifier_with(dir.path(), |s| s.sessions.per_agent = 100).await;
    let c = client(&v, false);
    let post = |body: Vec<u8>| {
        c.post(url(&v, "/v3/sessions"))
            .header("content-type", "application/vnd.api+json")
            .body(body)
    };
    for (body, reason) in [
        (&b"{"[..], "not JSON"),
        (b"[1]", "JSON object"),
        (br#"{"data":{"type":"session","attributes":{"agent_id":"A"}},"extra":1}"#, "'extra'"),
        (br#"{"data":{"type":"agent","attributes":{"agent_id":"A"}}}"#, "data.type"),
        (br#"{"data":{"type":"session","attributes":{}}}"#, "attributes"),
        (br#"{"data":{"type":"session","attributes":{"agent_id":["A"]}}}"#, "must be a string"),
        (br#"{"data":{"type":"session","attributes":{"agent_id":"A"}}}"#, "tpm_pop"),
        (br#"{"data":{"type":"session","attributes":{"agent_id":"A/../B","authentication_supported":[]}}}"#, "not valid"),
    ] {
        let (code, resp) = call(post(body.to_vec())).await;
        assert_eq!(code, 400, "{}: {resp}", String::from_utf8_lossy(body));
        let detail = resp["errors"][0]["detail"].as_str().unwrap();
        assert!(detail.contains(reason), "{detail} lacks {reason}");
    }
    // Oversized body.
    let huge = format!(
        r#"{{"data":{{"type":"session","attributes":{{"agent_id":"A","pad":"{}"}}}}}}"#,
        "x".repeat(100 * 1024)
    );
    let (code, _) = call(post(huge.into_bytes())).await;
    assert_eq!(code, 413);
    // PATCH without POST.
    let (code, resp) = prove(&c, &v, "no-such-session", &prove_body("x", "A", b"m", b"s")).await;
    assert_eq!(code, 404, "{resp}");
    // A proof that is not base64 / not a TPMS_ATTEST.
    let (sid, _) = create(&c, &v, "A").await;
    let mut body = prove_body(&sid, "A", b"", b"");
    body["data"]["attributes"]["authentication_provided"][0]["data"]["message"] = json!("%%%");
    let (code, resp) = prove(&c, &v, &sid, &body).await;
    // Agent A is not enrolled here: the enrolment check comes first, as upstream.
    assert_eq!(code, 200, "{resp}");
    assert_eq!(resp["data"]["attributes"]["evaluation"], "fail");
    // Wrong types in the proof.
    let (sid, _) = create(&c, &v, "A").await;
    let mut body = prove_body(&sid, "A", b"", b"");
    body["data"]["attributes"]["authentication_provided"] = json!("pop");
    let (code, resp) = prove(&c, &v, &sid, &body).await;
    assert_eq!(code, 400, "{resp}");
    assert_eq!(tokens(&v, "A").await, 0);
    // Still serving.
    create(&c, &v, "A").await;
}

/// A verifier adjusted by `adjust` with agent "A" enrolled, and the answer to one session
/// of "A" proved with its own TPM: `(verifier, HTTP status, body)`.
async fn one_good_proof(
    dir: &std::path::Path,
    adjust: impl FnOnce(&mut VerifierSettings),
) -> (RunningVerifier, u16, Value) {
    let v = start_verifier_with(dir, adjust).await;
    let agent = TestAgent::start(&v.tls_dir.join("cacert.crt")).await;
    enrol(&client(&v, true), &v, &agent, "A").await;
    let c = client(&v, false);
    let (sid, challenge) = create(&c, &v, "A").await;
    let (m, s) = agent.certify_ak(&challenge);
    let (code, body) = prove(&c, &v, &sid, &prove_body(&sid, "A", &m, &s)).await;
    (v, code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_challenge_fails_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let (v, code, body) =
        one_good_proof(dir.path(), |s| s.sessions.nonce_lifetime = Duration::ZERO).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["attributes"]["evaluation"], "fail");
    assert_eq!(body["data"]["attributes"]["token_expires_at"], Value::Null);
    assert_eq!(tokens(&v, "A").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_creation_is_rate_limited_per_agent_and_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_verifier_with(dir.path(), |s| {
        s.sessions.per_agent = 3;
        s.sessions.per_ip = 5;
    })
    .await;
    let c = client(&v, false);
    for _ in 0..3 {
        create(&c, &v, "A").await;
    }
    let resp = c
        .post(url(&v, "/v3/sessions"))
        .json(&create_body("A"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 0 && wait <= 60, "{wait}");
    // Another agent from the same address: allowed until the per-address limit.
    create(&c, &v, "B").await;
    let (code, body) = call(c.post(url(&v, "/v3/sessions")).json(&create_body("C"))).await;
    assert_eq!(code, 429, "{body}");
    assert_eq!(body["errors"][0]["title"], "Too Many Requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (v, code, body) =
        one_good_proof(dir.path(), |s| s.sessions.session_lifetime = Duration::ZERO).await;
    assert_eq!(code, 200, "{body}");
    let token = body["data"]["attributes"]["token"].as_str().unwrap();
    assert!(matches!(
        authenticate(v.store(), token, "A").await,
        Err(AuthError::Expired)
    ));
}
