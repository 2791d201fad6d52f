//! V delivery and revocation notices against a swtpm-backed test agent: V delivered once
//! per payload key (decrypted by the agent and equal to the tenant's V); a failing
//! `/keys/vkey` retried then FAILED (`not_reachable_v`); a tampered PCR producing a signed
//! `revocation` envelope at an HTTPS webhook with its own CA and at the agent; a webhook
//! that is down at first receiving the notice after a retry; a pending webhook
//! surviving a verifier restart; and `webhook_max_age` dropping a notice the receiver never
//! took.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::webhook::{WebhookReceiver, with_webhook};
use common::{
    TestAgent, call, client, rsa_key_pair, start_verifier, start_verifier_with, url, wait_status,
    wait_until,
};
use keylime_api::encode_b64;
use keylime_payload::revocation::RevocationEnvelope;
use keylime_verifier::RunningVerifier;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(30);

fn check_envelope(body: &Value, cert_pem: &str, agent_id: &str) -> Value {
    let env: RevocationEnvelope = serde_json::from_value(body.clone()).expect("envelope shape");
    env.verify(cert_pem).expect("signature verifies");
    let msg: Value = serde_json::from_str(&env.msg).unwrap();
    assert_eq!(msg["type"], "revocation", "{msg}");
    assert_eq!(msg["agent_id"], agent_id);
    assert_eq!(msg["event_id"], "pcr_validation.invalid_pcr_7");
    assert_eq!(msg["severity_label"], "emergency");
    assert!(msg["context"].is_string(), "{msg}");
    assert!(
        msg["event_time"].as_str().is_some_and(|t| t.len() == 24),
        "{msg}"
    );
    msg
}

/// Enrols a test agent as `id`, waits for its first attestation, then tampers PCR 7 and
/// waits until the receiver (down) has refused `refusals` delivery attempts of the notice.
async fn fail_while_receiver_down(
    v: &RunningVerifier,
    hook: &WebhookReceiver,
    id: &str,
    refusals: u64,
) -> TestAgent {
    let admin = client(v, true);
    let agent = TestAgent::start(&v.tls_dir.join("cacert.crt")).await;
    common::enrol(&admin, v, &agent, id).await;
    wait_status(&admin, v, id, LIMIT, "attested", |_, b| {
        b["results"]["attestation_count"].as_u64() >= Some(1)
    })
    .await;
    agent.tamper(7);
    wait_until(LIMIT, "refused webhook attempts", || {
        hook.refused.load(Ordering::SeqCst) >= refusals
    })
    .await;
    agent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v_once_per_key_and_signed_revocation_to_webhook_and_agent() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start(&dir.path().join("hook"), true).await;
    let v = start_verifier_with(dir.path(), |s| {
        with_webhook(s, dir.path(), &hook.ca_file, &hook.url)
    })
    .await;
    let admin = client(&v, true);
    let agent = TestAgent::start(&v.tls_dir.join("cacert.crt")).await;
    let (_, revocation_key, revocation_pub) = rsa_key_pair();
    let v_share = [7u8; 32];
    let mut body = agent.add_body();
    body["v"] = json!(encode_b64(&v_share));
    body["revocation_key"] = json!(revocation_key);
    let (code, resp) = call(admin.post(url(&v, "/v2.6/agents/w1")).json(&body)).await;
    assert_eq!(code, 200, "{resp}");
    wait_status(&admin, &v, "w1", LIMIT, "4 attestations", |_, b| {
        b["results"]["operational_state"] == 3
            && b["results"]["attestation_count"].as_u64() >= Some(4)
    })
    .await;
    {
        let r = agent.received.lock().unwrap();
        assert_eq!(r.vkeys.len(), 1, "V must be delivered exactly once");
        assert_eq!(r.vkeys[0], v_share, "agent decrypts the tenant's V");
    }

    agent.tamper(7);
    wait_status(&admin, &v, "w1", LIMIT, "invalid quote", |_, b| {
        b["results"]["operational_state"] == 9
    })
    .await;
    wait_until(LIMIT, "webhook delivery", || hook.received().len() == 1).await;
    check_envelope(&hook.received()[0], &revocation_pub, "w1");
    wait_until(LIMIT, "agent notice", || {
        !agent.received.lock().unwrap().revocations.is_empty()
    })
    .await;
    let notice = agent.received.lock().unwrap().revocations[0].clone();
    let msg = check_envelope(&notice, &revocation_pub, "w1");
    assert_eq!(msg["port"], agent.port);
    assert_eq!(agent.received.lock().unwrap().vkeys.len(), 1);
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_vkey_is_retried_then_failed() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_verifier(dir.path()).await;
    let admin = client(&v, true);
    let agent = TestAgent::start(&v.tls_dir.join("cacert.crt")).await;
    agent.vkey_status.store(500, Ordering::SeqCst);
    let mut body = agent.add_body();
    body["v"] = json!(encode_b64(&[1u8; 32]));
    let (code, _) = call(admin.post(url(&v, "/v2.6/agents/f1")).json(&body)).await;
    assert_eq!(code, 200);
    let st = wait_status(&admin, &v, "f1", LIMIT, "FAILED", |_, b| {
        b["results"]["operational_state"] == 7
    })
    .await;
    assert_eq!(
        st["results"]["last_event_id"],
        "internal.verifier.not_reachable_v"
    );
    // fast_timing: max_retries = 2 → 1 attempt + 2 retries.
    assert_eq!(agent.received.lock().unwrap().vkeys.len(), 3);
    // A previously good agent lost: comm_error to the agent notifier.
    wait_until(LIMIT, "comm_error notice", || {
        !agent.received.lock().unwrap().revocations.is_empty()
    })
    .await;
    let notice = agent.received.lock().unwrap().revocations[0].clone();
    let msg: Value = serde_json::from_str(notice["msg"].as_str().unwrap()).unwrap();
    assert_eq!(msg["type"], "comm_error");
    assert_eq!(notice["signature"], "");
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_down_then_up_gets_the_notice_after_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start(&dir.path().join("hook"), false).await;
    let v = start_verifier_with(dir.path(), |s| {
        with_webhook(s, dir.path(), &hook.ca_file, &hook.url);
        s.timing.retry_interval = Duration::from_millis(300);
        s.timing.max_retries = 20;
    })
    .await;
    let _agent = fail_while_receiver_down(&v, &hook, "d1", 1).await;
    assert!(hook.received().is_empty());
    hook.set_up(true);
    wait_until(LIMIT, "webhook delivery after retry", || {
        hook.received().len() == 1
    })
    .await;
    let msg: Value = serde_json::from_str(hook.received()[0]["msg"].as_str().unwrap()).unwrap();
    assert_eq!(msg["event_id"], "pcr_validation.invalid_pcr_7");
    assert_eq!(
        hook.received()[0]["signature"],
        "",
        "no revocation_key given"
    );
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_webhook_survives_a_verifier_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start(&dir.path().join("hook"), false).await;
    const RETRY: Duration = Duration::from_millis(500);
    let settings = |s: &mut keylime_verifier::VerifierSettings| {
        with_webhook(s, dir.path(), &hook.ca_file, &hook.url);
        s.timing.retry_interval = RETRY;
        s.timing.max_retries = 20;
    };
    let v = start_verifier_with(dir.path(), settings).await;
    // A running verifier tries again every RETRY: two refused attempts show the rhythm.
    let _agent = fail_while_receiver_down(&v, &hook, "p1", 2).await;
    v.shutdown().await;
    let refused = hook.refused.load(Ordering::SeqCst);
    hook.set_up(true);
    // Three retry intervals in which a verifier still delivering would have made at least
    // two attempts: none is made once it has stopped.
    tokio::time::sleep(3 * RETRY).await;
    assert_eq!(
        (hook.refused.load(Ordering::SeqCst), hook.received().len()),
        (refused, 0),
        "a stopped verifier made no delivery attempt"
    );

    let v = start_verifier_with(dir.path(), settings).await;
    wait_until(LIMIT, "webhook delivery after restart", || {
        hook.received().len() == 1
    })
    .await;
    let msg: Value = serde_json::from_str(hook.received()[0]["msg"].as_str().unwrap()).unwrap();
    assert_eq!(msg["agent_id"], "p1");
    assert_eq!(msg["type"], "revocation");
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_max_age_drops_a_notice_never_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start(&dir.path().join("hook"), false).await;
    let v = start_verifier_with(dir.path(), |s| {
        with_webhook(s, dir.path(), &hook.ca_file, &hook.url);
        s.revocations.webhook_max_age = Some(Duration::from_secs(1));
    })
    .await;
    let _agent = fail_while_receiver_down(&v, &hook, "m1", 1).await;
    // The outbox empties with the receiver still down: the notice was dropped, not sent.
    let store = keylime_store::Store::connect(
        &keylime_store::DatabaseUrl::Sqlite(dir.path().join("cv_data.sqlite")),
        &keylime_store::StoreOptions::default(),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !store
        .verifier()
        .pending_webhooks("default")
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the notice is still queued after {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(hook.received().is_empty());
    store.close().await;
    v.shutdown().await;
}
