//! The key-share endpoints against the real agent: every share that cannot be used gets
//! one and the same answer (no padding or length oracle), the shares and payloads are
//! refused over plain HTTP unless `enable_insecure_payload` allows them, and an agent
//! configured to run a payload script over plain HTTP refuses to start (upstream's rule
//! for advisory GHSA-2m39-75g9-ff5r).

mod common;
mod pull_support;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::wait_until;
use keylime_payload::rsa_oaep_sha1_encrypt_key;
use pull_support::delivery::{deliver, lines, pubkey, share_bodies, zip_of};
use pull_support::{PullAgent, start_agent};
use serde_json::json;

/// `/keys/ukey` and `/keys/vkey` bodies whose `encrypted_key` cannot yield a share: OAEP
/// under another key, a valid OAEP of 31 and of 33 bytes, random bytes, too short.
async fn unusable_shares(agent: &PullAgent) -> Vec<(&'static str, String)> {
    use rsa::pkcs8::DecodePublicKey as _;
    let own = rsa::RsaPublicKey::from_public_key_pem(&pubkey(agent).await).unwrap();
    let other = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let enc = |key: &rsa::RsaPublicKey, data: &[u8]| {
        STANDARD.encode(rsa_oaep_sha1_encrypt_key(key, data).unwrap())
    };
    vec![
        ("other key", enc(&other.to_public_key(), &[7u8; 32])),
        ("31 bytes", enc(&own, &[7u8; 31])),
        ("33 bytes", enc(&own, &[7u8; 33])),
        ("random", STANDARD.encode([0x5au8; 256])),
        ("short", STANDARD.encode([1u8; 17])),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_shares_all_get_the_same_answer() {
    let agent = start_agent(|_, _| {}).await;
    for route in ["/v2.6/keys/ukey", "/v2.6/keys/vkey"] {
        let mut answers = Vec::new();
        for (what, encrypted_key) in unusable_shares(&agent).await {
            let body = json!({"encrypted_key": encrypted_key, "auth_tag": "00"});
            let (status, answer) = agent.post(route, &body).await;
            assert_eq!(status, 400, "{route} {what}: {answer}");
            answers.push((what, answer));
        }
        let (_, first) = &answers[0];
        for (what, answer) in &answers {
            assert_eq!(answer, first, "{route}: '{what}' answered differently");
        }
    }
    // None of them reached the key exchange.
    let (status, body) = agent.get("/v2.6/keys/verify?challenge=abc").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (400, Some("Bootstrap key not yet available."))
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_refuses_key_shares_unless_insecure_payload_is_set() {
    let agent = start_agent(|config, _| {
        config.enable_agent_mtls = false;
        config.payload_script = String::new();
    })
    .await;
    let (_, ukey, vkey) = share_bodies(&agent, common::FIXED_UUID, Some(b"secret")).await;
    for (route, body) in [("/v2.6/keys/ukey", &ukey), ("/v2.6/keys/vkey", &vkey)] {
        let (status, answer) = agent.post(route, body).await;
        assert_eq!(status, 403, "{route}: {answer}");
        let reason = answer["status"].as_str().unwrap();
        assert!(reason.contains("enable_insecure_payload"), "{reason}");
    }
    let (status, body) = agent.get("/v2.6/keys/verify?challenge=abc").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (400, Some("Bootstrap key not yet available."))
    );
    // The rest of the API is served.
    let (status, _) = agent.get("/v2.6/keys/pubkey").await;
    assert_eq!(status, 200);
    assert!(
        !agent
            .config
            .keylime_dir
            .join("secure/unzipped/decrypted_payload")
            .exists()
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_payload_runs_when_insecure_payload_is_set() {
    let agent = start_agent(|config, _| {
        config.enable_agent_mtls = false;
        config.enable_insecure_payload = true;
    })
    .await;
    let autorun_log = agent.path("autorun.log");
    let zip = zip_of(&[(
        "autorun.sh",
        format!("echo ran >> {}\n", autorun_log.display()).as_bytes(),
    )]);
    deliver(&agent, common::FIXED_UUID, Some(&zip)).await;
    wait_until(Duration::from_secs(30), "autorun.sh ran", || {
        let p = autorun_log.clone();
        async move { !lines(&p).is_empty() }
    })
    .await;
    assert_eq!(lines(&autorun_log), vec!["ran"]);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_script_over_plain_http_refuses_to_start() {
    let tpm = keylime_testkit::Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let registrar = common::start_registrar(&dir.path().join("registrar")).await;
    let mut config = common::agent_config(
        &dir.path().join("keylime"),
        registrar.http_addr.port(),
        keylime_config::UuidSetting::Fixed(common::FIXED_UUID.into()),
    );
    config.port = common::reserve_port();
    config.enable_agent_mtls = false;
    assert_eq!(config.payload_script, "autorun.sh", "the default");
    let run = keylime_agent::run_with_tcti(
        config,
        pull_support::tcti(&tpm),
        std::future::pending::<()>(),
    );
    let outcome = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the agent must refuse to start, not serve");
    let err = format!("{:#}", outcome.expect_err("start refused"));
    assert!(err.contains("enable_insecure_payload"), "{err}");
    assert!(
        common::registrar_record(&registrar, common::FIXED_UUID)
            .await
            .is_none(),
        "nothing registered"
    );
    registrar.shutdown().await;
}
