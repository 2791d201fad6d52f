//! The revocation notice byte for byte: the same failure (our agent's policy PCR extended
//! behind the verifier's back, after upstream's tenant enrolled it with a `--cert` payload)
//! under upstream 7.14.3's verifier and under ours, each notice taken at a webhook exactly as
//! it was sent. Once the values that differ between any two runs are masked (the agent's
//! port, the event time, the signature, the payload certificate's serial), the two bodies
//! must be equal: the envelope's layout, `msg`'s JSON text and every field in it. The
//! webhook is an HTTPS receiver with the verifier's own server certificate.

use std::time::Duration;

use keylime_e2e::cert_store_from_localca;
use keylime_interop::agent::{OurAgent, POLICY_PCR};
use keylime_interop::config_files::{ConfigOptions, ConfigSet};
use keylime_interop::services::{Implementation, start_servers};
use keylime_interop::tenant::upstream_tenant;
use keylime_interop::transcript::Masks;
use keylime_interop::webhook::{RawWebhook, comparable};
use keylime_interop::{step, wait_until};
use keylime_testkit::swtpm::Swtpm;

const SCENARIO: &str = "revocation notice bytes";
const ID: &str = "c0ffee00-0009-4a97-9ef7-75bd81c0e2e0";

/// The webhook body `which` verifier sends when our agent fails, masked for comparison.
async fn notice_from(which: Implementation) -> (String, serde_json::Value) {
    let mut hook = RawWebhook::bind().await;
    let tpm = Swtpm::start_with_ek_certs();
    let work = tempfile::tempdir().unwrap();
    let store = cert_store_from_localca(
        tpm.localca_dir().unwrap(),
        &work.path().join("tpm_cert_store"),
    );
    let opts = ConfigOptions {
        webhook_url: Some(hook.url.clone()),
        ..ConfigOptions::default()
    };
    let mut config = ConfigSet::write(&work.path().join("deploy"), &store, &opts);
    step(SCENARIO, &format!("{which} verifier and registrar start"));
    let (_verifier, _registrar) = start_servers(which, which, &mut config).await;
    hook.serve(Some(&config.cv_ca()));
    let mut agent = OurAgent::start(&work.path().join("agent"), ID, &config, tpm);
    agent.wait_serving().await;
    agent.wait_active_at_registrar(&config).await;
    agent
        .enrol_with_upstream_tenant(&config, &work.path().join("tenant-ca"))
        .await;
    wait_until(Duration::from_secs(90), "a successful attestation", || {
        let config = &config;
        async move {
            let run = upstream_tenant(config, &["-c", "cvstatus", "-u", ID]).await;
            let s = run.verifier_status(ID)?;
            (s["operational_state"] == "Get Quote" && s["attestation_count"].as_u64()? >= 1)
                .then_some(())
        }
    })
    .await;

    step(
        SCENARIO,
        &format!("PCR {POLICY_PCR} extended; the {which} verifier's notice"),
    );
    agent.tamper_policy_pcr();
    let body = hook.first_body(Duration::from_secs(90)).await;
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "the {which} verifier's notice is not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    });
    let masks = Masks::default().with_port("agent_port", agent.port);
    (comparable(&body, &masks), doc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_and_our_verifiers_send_the_same_notice_bytes() {
    let (upstream, upstream_doc) = notice_from(Implementation::Upstream).await;
    let (ours, ours_doc) = notice_from(Implementation::Ours).await;
    for (which, doc) in [("upstream", &upstream_doc), ("our", &ours_doc)] {
        let msg: serde_json::Value = serde_json::from_str(
            doc["msg"]
                .as_str()
                .unwrap_or_else(|| panic!("{which} notice has no msg: {doc}")),
        )
        .unwrap_or_else(|e| panic!("{which} msg is not JSON ({e}): {doc}"));
        assert_eq!(msg["type"], "revocation", "{which}: {msg}");
        assert_eq!(msg["agent_id"], ID, "{which}: {msg}");
        assert_eq!(
            msg["event_id"],
            format!("pcr_validation.invalid_pcr_{POLICY_PCR}"),
            "{which}: {msg}"
        );
        let signature = doc["signature"].as_str().unwrap_or_default();
        assert!(signature.len() > 100, "{which} notice is not signed: {doc}");
    }
    assert_eq!(
        ours, upstream,
        "our verifier's notice (left) differs from upstream's (right)"
    );
}
