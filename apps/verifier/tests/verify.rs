//! `GET /v2.x/verify/identity` and `POST /v2.x/verify/evidence` over real TLS, public
//! (no client certificate), with quotes from the swtpm-backed test agent: valid, invalid,
//! missing parameters, unknown agent; evidence good, tampered, missing inputs, bad type.

mod common;

use std::time::Duration;

use common::{TestAgent, call, client, start_verifier, url, wait_status};
use keylime_api::encode_b64;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_identity_answers_upstream_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_verifier(dir.path()).await;
    let admin = client(&v, true);
    let anon = client(&v, false);
    let agent = TestAgent::start(&v.tls_dir.join("cacert.crt")).await;
    common::enrol(&admin, &v, &agent, "i1").await;
    wait_status(&admin, &v, "i1", LIMIT, "attested", |_, b| {
        b["results"]["attestation_count"].as_u64() >= Some(1)
    })
    .await;

    let q = agent.quote_now("abcdefghij0123456789", "0x0");
    let query = |agent_id: &str, nonce: &str| {
        vec![
            ("agent_uuid", agent_id.to_string()),
            ("quote", q.quote.clone()),
            ("nonce", nonce.to_string()),
            ("hash_alg", "sha256".to_string()),
        ]
    };
    let path = url(&v, "/v2.6/verify/identity");
    let (code, body) = call(anon.get(&path).query(&query("i1", "abcdefghij0123456789"))).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["results"], json!({"valid": 1}));

    let (code, body) = call(anon.get(&path).query(&query("i1", "wrongnonce0123456789"))).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["results"]["valid"], 0);
    assert!(
        body["results"]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );

    let (code, body) = call(
        anon.get(&path)
            .query(&query("nobody", "abcdefghij0123456789")),
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(body["status"], "agent id not found");

    for missing in ["agent_uuid", "quote", "nonce", "hash_alg"] {
        let params: Vec<_> = query("i1", "abcdefghij0123456789")
            .into_iter()
            .filter(|(k, _)| *k != missing)
            .collect();
        let (code, body) = call(anon.get(&path).query(&params)).await;
        assert_eq!(code, 400, "{missing}");
        assert_eq!(
            body["status"],
            format!("missing query parameter '{missing}'")
        );
    }
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_evidence_checks_tpm_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_verifier(dir.path()).await;
    let anon = client(&v, false);
    let agent = TestAgent::start(&v.tls_dir.join("cacert.crt")).await;
    let policy = agent.tpm_policy();
    let mask = policy["mask"].as_str().unwrap().to_string();
    let nonce = "nonce0123456789abcde";
    let q = agent.quote_now(nonce, &mask);
    let data = json!({
        "quote": q.quote, "nonce": nonce, "hash_alg": "sha256",
        "tpm_ek": encode_b64(b"ek"), "tpm_ak": encode_b64(&agent.ak_tpm),
        "tpm_policy": policy.to_string(),
    });
    let path = url(&v, "/v2.6/verify/evidence");
    let (code, body) = call(anon.post(&path).json(&json!({"type": "tpm", "data": data}))).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["results"]["valid"], true, "{body}");
    assert_eq!(body["results"]["claims"], data);
    assert_eq!(body["results"]["failures"], json!([]));

    // A PCR extended after the policy was taken.
    agent.tamper(7);
    let q = agent.quote_now(nonce, &mask);
    let mut bad = data.clone();
    bad["quote"] = json!(q.quote);
    let (code, body) = call(anon.post(&path).json(&json!({"type": "tpm", "data": bad}))).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["results"]["valid"], false);
    assert_eq!(
        body["results"]["failures"][0]["type"],
        "pcr_validation.invalid_pcr_7"
    );

    // Wrong nonce: the quote itself fails.
    let mut bad = data.clone();
    bad["nonce"] = json!("othernonce0123456789");
    let (_, body) = call(anon.post(&path).json(&json!({"type": "tpm", "data": bad}))).await;
    assert_eq!(body["results"]["valid"], false);
    assert_eq!(
        body["results"]["failures"][0]["type"],
        "qoute_validation.quote_validation"
    );

    for field in ["quote", "nonce", "hash_alg", "tpm_ek", "tpm_ak"] {
        let mut d = data.clone();
        d.as_object_mut().unwrap().remove(field);
        let (code, body) = call(anon.post(&path).json(&json!({"type": "tpm", "data": d}))).await;
        assert_eq!(code, 400, "{field}");
        assert_eq!(body["status"], "Bad Request");
        assert_eq!(
            body["results"]["failures"][0]["type"],
            "default.missing_param"
        );
    }
    let mut d = data.clone();
    d.as_object_mut().unwrap().remove("tpm_policy");
    let (code, body) = call(anon.post(&path).json(&json!({"type": "tpm", "data": d}))).await;
    assert_eq!(code, 400);
    assert_eq!(
        body["results"]["failures"][0]["type"],
        "default.missing_policy"
    );

    let mut d = data.clone();
    d["runtime_policy"] = json!("{}");
    let (code, body) = call(anon.post(&path).json(&json!({"type": "tpm", "data": d}))).await;
    assert_eq!(code, 400);
    assert_eq!(
        body["results"]["failures"][0]["type"], "default.invalid_policy",
        "{body}"
    );
    assert!(
        body["results"]["failures"][0]["context"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("runtime_policy is invalid")),
        "{body}"
    );
    let mut d = data.clone();
    d["mb_policy"] = json!("{not json");
    let (code, body) = call(anon.post(&path).json(&json!({"type": "tpm", "data": d}))).await;
    assert_eq!(code, 400);
    assert_eq!(
        body["results"]["failures"][0]["type"], "default.invalid_policy",
        "{body}"
    );

    let (code, body) = call(anon.post(&path).json(&json!({"type": "sgx", "data": data}))).await;
    assert_eq!(code, 400);
    assert_eq!(body["status"], "invalid evidence type");
    let (code, _) = call(anon.post(&path).body("not json")).await;
    assert_eq!(code, 400);
    // The service is still up.
    let (code, _) = call(anon.get(url(&v, "/version"))).await;
    assert_eq!(code, 200);
    v.shutdown().await;
}
