//! The pull API end to end: swtpm, the registrar in-process, the real agent serving
//! HTTPS with required client certificates, an mTLS client.

mod common;
mod pull_support;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{FIXED_UUID, registrar_record, wait_until};
use keylime_attestation::{Nonce, PreparedAk, verify_quote};
use keylime_payload::key_auth_tag;
use keylime_tpm::HashAlg;
use pull_support::delivery::{deliver, lines, zip_of};
use pull_support::{PullAgent, mtls_client, start_agent};
use serde_json::json;
use sha2::Digest as _;

const NONCE: &str = "abcdefghij0123456789";

async fn aik(agent: &PullAgent) -> PreparedAk {
    let record = registrar_record(&agent.registrar, FIXED_UUID)
        .await
        .expect("registered");
    let b64 = record["aik_tpm"].as_str().unwrap();
    PreparedAk::from_tpm2b(&STANDARD.decode(b64).unwrap()).unwrap()
}

fn expected_pcr16(pem: &str) -> String {
    let mut buf = vec![0u8; 32];
    buf.extend(sha2::Sha256::digest(pem.as_bytes()));
    hex::encode(sha2::Sha256::digest(&buf))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_verify_and_bad_queries_get_400() {
    let agent = start_agent(|_, _| {}).await;
    std::fs::write(agent.path("ima.log"), "line0\nline1\nline2\n").unwrap();
    std::fs::write(agent.path("boot.log"), b"\x01\x02boot").unwrap();
    let ak = aik(&agent).await;

    // Identity quote: PCR 16 only, bound to the served pubkey.
    let (status, body) = agent
        .get(&format!("/v2.6/quotes/identity?nonce={NONCE}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], 200);
    let r = &body["results"];
    assert_eq!(r["hash_alg"], "sha256");
    assert_eq!(r["enc_alg"], "rsa2048");
    assert_eq!(r["sign_alg"], "rsassa");
    let pem = r["pubkey"].as_str().unwrap().to_string();
    let (_, pk) = agent.get("/v2.6/keys/pubkey").await;
    assert_eq!(pk["results"]["pubkey"], pem.as_str());
    let q = verify_quote(
        r["quote"].as_str().unwrap(),
        &ak,
        &Nonce::Text(NONCE.into()),
        HashAlg::Sha256,
        Some("rsassa"),
    )
    .expect("identity quote verifies");
    assert_eq!(q.pcrs.values.keys().copied().collect::<Vec<_>>(), vec![16]);
    assert_eq!(q.pcrs.hex(16), Some(expected_pcr16(&pem).as_str()));

    // Older API: enc_alg without the key size.
    let (_, old) = agent
        .get(&format!("/v2.1/quotes/identity?nonce={NONCE}"))
        .await;
    assert_eq!(old["results"]["enc_alg"], "rsa");

    // Integrity quote: mask PCRs + 16, IMA from the requested entry, boot log for PCR 0.
    let (status, body) = agent
        .get(&format!(
            "/v2.6/quotes/integrity?nonce={NONCE}&mask=0x401&partial=1&ima_ml_entry=1"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let r = &body["results"];
    assert!(r.get("pubkey").is_none(), "partial=1 omits pubkey");
    assert_eq!(r["ima_measurement_list"], "line1\nline2\n");
    assert_eq!(r["ima_measurement_list_entry"], 1);
    assert_eq!(r["mb_measurement_list"], STANDARD.encode(b"\x01\x02boot"));
    let q = verify_quote(
        r["quote"].as_str().unwrap(),
        &ak,
        &Nonce::Text(NONCE.into()),
        HashAlg::Sha256,
        Some("rsassa"),
    )
    .expect("integrity quote verifies");
    assert_eq!(
        q.pcrs.values.keys().copied().collect::<Vec<_>>(),
        vec![0, 10, 16]
    );
    assert_eq!(q.pcrs.hex(16), Some(expected_pcr16(&pem).as_str()));
    let (_, full) = agent
        .get(&format!(
            "/v2.6/quotes/integrity?nonce={NONCE}&mask=0x400&partial=0"
        ))
        .await;
    assert_eq!(full["results"]["pubkey"], pem.as_str());
    assert!(
        full["results"].get("mb_measurement_list").is_none(),
        "no PCR 0, no boot log"
    );

    // Every query rule: 400 with the reason.
    let long = "a".repeat(65);
    let cases = [
        (
            "/v2.6/quotes/identity?nonce=ab-cd".to_string(),
            "Parameters should be strictly alphanumeric: ab-cd",
        ),
        (
            format!("/v2.6/quotes/identity?nonce={long}"),
            "Nonce is too long (max size 64)",
        ),
        (
            "/v2.6/quotes/identity".to_string(),
            "uri must contain key 'nonce'",
        ),
        (
            "/v2.6/quotes/integrity?nonce=a%2Bb&mask=0x1&partial=0".to_string(),
            "nonce should be strictly alphanumeric: a+b",
        ),
        (
            format!("/v2.6/quotes/integrity?nonce={long}&mask=0x1&partial=0"),
            "Nonce is too long (max size: 64)",
        ),
        (
            "/v2.6/quotes/integrity?nonce=abc&mask=0xZZ&partial=0".to_string(),
            "mask should be a hex encoded 32-bit integer: 0xZZ",
        ),
        (
            "/v2.6/quotes/integrity?nonce=abc&mask=0x1000000&partial=0".to_string(),
            "mask selects PCRs above 23",
        ),
        (
            "/v2.6/quotes/integrity?nonce=abc&mask=0x1&partial=5".to_string(),
            "uri must contain key 'partial' and value '0' or '1'",
        ),
        (
            "/v2.6/quotes/integrity?nonce=abc&partial=0".to_string(),
            "uri must contain key 'mask'",
        ),
        (
            "/v1.0/quotes/identity?nonce=abc".to_string(),
            "API version not supported: v1.0",
        ),
        (
            "/v2.7/keys/pubkey".to_string(),
            "API version not supported: v2.7",
        ),
        (
            "/v2.1/agent/info".to_string(),
            "Not Implemented: Use /agent, /keys, or /quotes interfaces",
        ),
        ("/nowhere".to_string(), "Not Implemented: Use /v2.1"),
    ];
    for (path, reason) in cases {
        let (status, body) = agent.get(&path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["code"], 400, "{path}");
        let text = body["status"].as_str().unwrap();
        assert!(
            text.starts_with(reason),
            "{path}: {text:?} does not start with {reason:?}"
        );
        assert_eq!(body["results"], json!({}), "{path}");
    }
    let (_, v1) = agent.get("/v1.0/keys/pubkey").await;
    assert_eq!(v1["status"], "API version not supported: v1.0");
    let resp = agent
        .client
        .delete(agent.url("/v2.6/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET, POST");

    // Still up and answering.
    let (status, version) = agent.get("/version").await;
    assert_eq!(status, 200);
    assert_eq!(version["results"]["supported_version"], "2.6");
    assert_eq!(
        version["results"]["supported_versions"],
        json!(["2.1", "2.2", "2.3", "2.4", "2.5", "2.6"])
    );
    let (status, info) = agent.get("/v2.2/agent/info").await;
    assert_eq!(status, 200);
    assert_eq!(info["results"]["agent_uuid"], FIXED_UUID);
    assert!(info["results"]["ak_handle"].is_u64());

    // A client without a certificate does not get through the handshake.
    let anonymous = mtls_client(&agent.ca, &agent.config.server_cert, false);
    assert!(anonymous.get(agent.url("/version")).send().await.is_err());
    // Nor does one whose certificate comes from another CA.
    let other_ca = keylime_pki::CertificateAuthority::generate(&keylime_pki::CaOptions {
        key_algorithm: keylime_pki::KeyAlgorithm::EcdsaP256,
        ..Default::default()
    })
    .unwrap();
    let stranger = mtls_client(&other_ca, &agent.config.server_cert, true);
    assert!(stranger.get(agent.url("/version")).send().await.is_err());

    agent.stop().await;
}

fn test_key_pem() -> String {
    std::fs::read_to_string(keylime_testkit::testdata("keys/ima/keylime/rsa2048.pem")).unwrap()
}

fn test_pubkey_pem() -> String {
    std::fs::read_to_string(keylime_testkit::testdata("keys/ima/keylime/rsa2048pub.pem")).unwrap()
}

fn write_script(path: &std::path::Path, body: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

async fn revoke(agent: &PullAgent, key_pem: &str) -> (u16, serde_json::Value) {
    let msg = json!({"type": "revocation", "agent_id": FIXED_UUID, "event_id": "test"}).to_string();
    let envelope = keylime_payload::revocation::RevocationEnvelope::signed(msg, key_pem).unwrap();
    agent
        .post(
            "/v2.6/notifications/revocation",
            &serde_json::to_value(envelope).unwrap(),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_delivered_once_and_payload_revocation_actions_run() {
    let agent = start_agent(|_, _| {}).await;
    let autorun_log = agent.path("autorun.log");
    let marker = agent.path("revoked.log");
    let zip = zip_of(&[
        (
            "autorun.sh",
            format!("echo ran >> {}\n", autorun_log.display()).as_bytes(),
        ),
        ("RevocationNotifier-cert.crt", test_pubkey_pem().as_bytes()),
        ("action_list", b"local_action_mark\n"),
        (
            "local_action_mark",
            format!(
                "#!/bin/sh\ncat \"$1\" >> {m}\necho >> {m}\n",
                m = marker.display()
            )
            .as_bytes(),
        ),
        ("data/hello.txt", b"hello"),
    ]);
    let k = deliver(&agent, FIXED_UUID, Some(&zip)).await;

    let (status, body) = agent.get("/v2.6/keys/verify?challenge=Challenge123").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"]["hmac"], key_auth_tag(&k, "Challenge123"));
    let (status, _) = agent.get("/v2.6/keys/verify?challenge=a-b").await;
    assert_eq!(status, 400);
    let (status, body) = agent.get("/v2.6/keys/verify").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (400, Some("No challenge provided."))
    );

    wait_until(Duration::from_secs(30), "autorun.sh ran", || {
        let p = autorun_log.clone();
        async move { !lines(&p).is_empty() }
    })
    .await;
    let unzipped = agent.config.keylime_dir.join("secure/unzipped");
    assert_eq!(
        std::fs::read(unzipped.join("data/hello.txt")).unwrap(),
        b"hello"
    );
    assert_eq!(
        std::fs::read(unzipped.join("decrypted_payload")).unwrap(),
        zip
    );
    assert_eq!(
        std::fs::read(unzipped.join("derived_tci_key")).unwrap(),
        k.as_bytes()
    );

    // Bad JSON / bad base64 / wrong sizes: 400, nothing changes.
    let r = agent
        .client
        .post(agent.url("/v2.6/keys/ukey"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (status, body) = agent
        .post("/v2.6/keys/vkey", &json!({"encrypted_key": "!!"}))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["status"]
            .as_str()
            .unwrap()
            .starts_with("Invalid base64 encoding in encrypted_key")
    );
    let (status, _) = agent
        .post(
            "/v2.6/keys/vkey",
            &json!({"encrypted_key": STANDARD.encode([0u8; 256])}),
        )
        .await;
    assert_eq!(status, 400);

    // A revocation with a bad signature runs nothing.
    let other_key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let other_pem = {
        use rsa::pkcs8::EncodePrivateKey as _;
        other_key
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string()
    };
    let (status, body) = revoke(&agent, &other_pem).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["status"].as_str().unwrap().contains("signature"),
        "{body}"
    );
    // A valid one runs the payload's action with the message file.
    let (status, body) = revoke(&agent, &test_key_pem()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"], serde_json::Value::Null);
    wait_until(Duration::from_secs(30), "revocation action ran", || {
        let p = marker.clone();
        async move { !lines(&p).is_empty() }
    })
    .await;
    let ran = lines(&marker);
    assert_eq!(
        ran.len(),
        1,
        "exactly one action run (the bad signature ran none): {ran:?}"
    );
    let msg: serde_json::Value = serde_json::from_str(&ran[0]).unwrap();
    assert_eq!(msg["agent_id"], FIXED_UUID);
    // Actions run after any pending delivery (same queue): autorun ran exactly once.
    assert_eq!(lines(&autorun_log), vec!["ran"]);

    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_auth_tag_traversal_zip_and_configured_actions() {
    let agent = start_agent(|config, dir| {
        config.revocation_cert = keylime_testkit::testdata("keys/ima/keylime/rsa2048pub.pem");
        config.revocation_actions = vec!["configured_action".into()];
        write_script(
            &config.revocation_actions_dir.join("configured_action"),
            &format!(
                "cat \"$1\" >> {m}; echo >> {m}",
                m = dir.join("revoked.log").display()
            ),
        );
    })
    .await;
    let marker = agent.path("revoked.log");

    // auth_tag over another id: the pair is never accepted.
    deliver(&agent, "someone-else", None).await;
    let (status, body) = agent.get("/v2.6/keys/verify?challenge=abc").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (400, Some("Bootstrap key not yet available."))
    );

    // A zip with a ../ entry: K is accepted, the zip is refused, autorun does not run.
    let autorun_log = agent.path("autorun.log");
    let zip = zip_of(&[
        (
            "autorun.sh",
            format!("echo ran >> {}\n", autorun_log.display()).as_bytes(),
        ),
        ("../escaped.txt", b"pwned"),
    ]);
    let k = deliver(&agent, FIXED_UUID, Some(&zip)).await;
    let (status, body) = agent.get("/v2.6/keys/verify?challenge=xyz").await;
    assert_eq!(status, 200);
    assert_eq!(body["results"]["hmac"], key_auth_tag(&k, "xyz"));

    // The configured action runs on a valid revocation; it is queued behind the
    // delivery, so once it has run the delivery is over.
    let (status, body) = revoke(&agent, &test_key_pem()).await;
    assert_eq!(status, 200, "{body}");
    wait_until(Duration::from_secs(30), "configured action ran", || {
        let p = marker.clone();
        async move { !lines(&p).is_empty() }
    })
    .await;
    assert_eq!(lines(&marker).len(), 1);
    assert!(
        lines(&autorun_log).is_empty(),
        "autorun.sh of a refused zip ran"
    );
    assert!(!agent.config.keylime_dir.join("secure/escaped.txt").exists());
    assert!(
        !agent
            .config
            .keylime_dir
            .join("secure/unzipped/autorun.sh")
            .exists()
    );

    agent.stop().await;
}
