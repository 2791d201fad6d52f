//! The revocation webhook receiver down for a long outage, with the real verifier binary,
//! swtpm and mTLS on loopback: notices created during the outage (the same agent enrolled
//! again and failing again), more attempts than `max_retries` refused, the verifier killed
//! and started again, then the receiver back. Every notice arrives, in the order it was
//! created; while the receiver is down only the oldest notice is attempted. The outage is
//! bounded by attempts counted at the receiver, not by time.

use std::time::Duration;

use keylime_e2e::deployment::Deployment;
use keylime_e2e::webhook::{WebhookReceiver, notice_message};
use keylime_e2e::{Service, extend_pcr, spawn_agent, wait_until};
use serde_json::Value;

const AGENT_ID: &str = "d432fbb3-d2f1-4a97-9ef7-75bd81c0e2a7";
const POLICY_PCR: u8 = 15;
/// `max_retries` of the deployment's verifier.conf.
const MAX_RETRIES: usize = 3;
const LIMIT: Duration = Duration::from_secs(60);
/// What the verifier logs once a notice is in its outbox.
const QUEUED: &str = "revocation webhook notice queued";

/// The PCR value the `n`th enrolment's policy allows (never the tampered PCR's value), so
/// each notice says which enrolment made it.
fn marker(n: usize) -> String {
    format!("{n:064x}")
}

/// Which enrolment a revocation envelope is about.
fn enrolment_of(envelope: &Value) -> usize {
    let policy = notice_message(envelope)["tpm_policy"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (1..=3)
        .find(|n| policy.contains(&marker(*n)))
        .unwrap_or_else(|| panic!("a notice from no known enrolment: {envelope}"))
}

/// Enrols the agent with policy `n` (which the tampered PCR fails at once) and waits until
/// the verifier has queued the `queued`th notice of its current run.
async fn enrol_and_fail(dep: &Deployment, verifier: &Service, n: usize, queued: usize) {
    let policy = format!("{{\"{POLICY_PCR}\": [\"{}\"]}}", marker(n));
    let (ok, added) = dep
        .tenant(&["-c", "add", "-u", AGENT_ID, "--tpm_policy", &policy])
        .await;
    assert!(ok, "tenant add #{n}: {added}");
    wait_until(LIMIT, &format!("notice #{n} in the outbox"), || {
        let log = verifier.output();
        async move { (log.matches(QUEUED).count() >= queued).then_some(()) }
    })
    .await;
}

async fn remove_agent(dep: &Deployment) {
    let (ok, doc) = dep.tenant(&["-c", "delete", "-u", AGENT_ID]).await;
    assert!(ok, "tenant delete: {doc}");
}

/// Waits until the receiver has refused `n` attempts; asserts every one was of the oldest
/// notice (enrolment 1).
async fn refused_attempts(hook: &WebhookReceiver, n: usize, what: &str) {
    let refused = wait_until(LIMIT, what, || {
        let refused = hook.refused();
        async move { (refused.len() >= n).then_some(refused) }
    })
    .await;
    let attempted: Vec<usize> = refused.iter().map(enrolment_of).collect();
    assert!(
        attempted.iter().all(|&e| e == 1),
        "while the receiver is down only the oldest notice is attempted: {attempted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_notice_arrives_in_order_after_a_long_outage_and_a_restart() {
    let (tpm, work, mut dep) = Deployment::with_swtpm();
    let (verifier, _registrar) = dep.start_servers().await;
    let hook = WebhookReceiver::start(&dep.cv_ca(), false).await;
    dep.enable_webhook(&hook.url);
    drop(verifier);
    let verifier = dep.start_verifier().await;
    let (config, _) = dep.write_agent_config(&work.path().join("agent"), AGENT_ID);
    let _agent = spawn_agent("agent", &config, &tpm.tcti_string(), work.path()).await;
    // Every enrolment below fails its first quote.
    extend_pcr(&tpm.tcti_string(), POLICY_PCR, 0x5a);

    enrol_and_fail(&dep, &verifier, 1, 1).await;
    remove_agent(&dep).await;
    enrol_and_fail(&dep, &verifier, 2, 2).await;
    // Past max_retries the oldest notice is still tried, and still alone.
    refused_attempts(&hook, MAX_RETRIES + 2, "attempts beyond max_retries").await;

    // The verifier dies mid-outage; the new one resumes from its outbox.
    drop(verifier);
    let verifier = dep.start_verifier().await;
    let before = hook.refused().len();
    refused_attempts(&hook, before + 1, "an attempt by the restarted verifier").await;
    remove_agent(&dep).await;
    enrol_and_fail(&dep, &verifier, 3, 1).await;
    // Created while the head is being retried: it waits behind it.
    let before = hook.refused().len();
    refused_attempts(&hook, before + 1, "an attempt after notice #3").await;

    hook.set_up(true);
    let received = wait_until(LIMIT, "the three notices", || {
        let received = hook.received();
        async move { (received.len() >= 3).then_some(received) }
    })
    .await;
    let order: Vec<usize> = received.iter().map(enrolment_of).collect();
    let mut first_arrivals = order.clone();
    first_arrivals.dedup();
    assert_eq!(
        first_arrivals,
        [1, 2, 3],
        "every notice, in creation order (a repeat only right after itself): {order:?}\n\
         verifier log:\n{}",
        verifier.output()
    );
    for envelope in &received {
        let msg = notice_message(envelope);
        assert_eq!(msg["type"], "revocation", "{msg}");
        assert_eq!(msg["agent_id"], AGENT_ID);
        assert_eq!(
            msg["event_id"],
            format!("pcr_validation.invalid_pcr_{POLICY_PCR}")
        );
    }
}
