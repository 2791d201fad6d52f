//! End-to-end pull attestation: swtpm, the real registrar, verifier, agent and tenant
//! binaries on loopback. The agent is enrolled with a PCR policy and a payload, attested
//! again and again, then a policy PCR is extended behind the verifier's back: the verifier
//! must catch it, and the agent must run its revocation action.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use keylime_e2e::deployment::Deployment;
use keylime_e2e::{extend_pcr, spawn_agent, wait_until};

const AGENT_ID: &str = "d432fbb3-d2f1-4a97-9ef7-75bd81c0e2e0";
const POLICY_PCR: u8 = 15;

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The `--cert` directory: the revocation notifier's certificate and key, an `autorun.sh`
/// that appends a line to `autorun_log`, and an `action_list` naming `record_revocation`.
fn payload_dir(dir: &Path, autorun_log: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let ca =
        keylime_pki::CertificateAuthority::generate(&keylime_pki::CaOptions::default()).unwrap();
    let notifier = ca
        .issue(keylime_pki::CertRole::Client, "RevocationNotifier", &[])
        .unwrap();
    std::fs::write(dir.join("RevocationNotifier-cert.crt"), &notifier.cert_pem).unwrap();
    std::fs::write(
        dir.join("RevocationNotifier-private.pem"),
        &notifier.key_pem,
    )
    .unwrap();
    std::fs::write(dir.join("cacert.crt"), ca.cert_pem()).unwrap();
    write_exec(
        &dir.join("autorun.sh"),
        &format!("#!/bin/sh\necho ran >> '{}'\n", autorun_log.display()),
    );
    std::fs::write(dir.join("action_list"), "record_revocation\n").unwrap();
}

async fn cvstatus(dep: &Deployment) -> serde_json::Value {
    let (_, doc) = dep.tenant(&["-c", "cvstatus", "-u", AGENT_ID]).await;
    doc
}

/// The agent's status object inside a tenant `cvstatus --json` document.
fn agent_status(doc: &serde_json::Value) -> Option<&serde_json::Value> {
    doc.get("results")?.get(AGENT_ID)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_attest_tamper_revoke() {
    let (tpm, work, mut dep) = Deployment::with_swtpm();
    let (_verifier, _registrar) = dep.start_servers().await;

    // The agent: registers, then serves its pull API over mTLS.
    let agent_dir = work.path().join("agent");
    let (config, _) = dep.write_agent_config(&agent_dir, AGENT_ID);
    let revoked_log = work.path().join("revoked.log");
    std::fs::create_dir_all(agent_dir.join("actions")).unwrap();
    write_exec(
        &agent_dir.join("actions").join("record_revocation"),
        &format!("#!/bin/sh\ncat \"$1\" >> '{}'\n", revoked_log.display()),
    );
    // The agent opens its pull API only once registered and activated.
    let agent = spawn_agent("agent", &config, &tpm.tcti_string(), work.path()).await;
    let (ok, reg) = dep.tenant(&["-c", "regstatus", "-u", AGENT_ID]).await;
    assert!(ok, "regstatus: {reg}");

    // Enrol with a PCR policy and a payload; --verify waits for the agent to derive K.
    let autorun_log = work.path().join("autorun.log");
    let payload = work.path().join("payload");
    payload_dir(&payload, &autorun_log);
    let zeros = "0".repeat(64);
    let policy = format!("{{\"{POLICY_PCR}\": [\"{zeros}\"]}}");
    let (ok, added) = dep
        .tenant(&[
            "-c",
            "add",
            "-u",
            AGENT_ID,
            "--tpm_policy",
            &policy,
            "--cert",
            payload.to_str().unwrap(),
            "--verify",
        ])
        .await;
    assert!(
        ok,
        "tenant add failed: {added}\nagent log:\n{}",
        agent.output()
    );

    // Attested again and again.
    let status = wait_until(
        Duration::from_secs(60),
        "three successful attestations",
        || async {
            let doc = cvstatus(&dep).await;
            let s = agent_status(&doc)?.clone();
            (s["operational_state"] == "Get Quote" && s["attestation_count"].as_u64()? >= 3)
                .then_some(s)
        },
    )
    .await;
    assert_eq!(status["attestation_status"], "PASS", "{status}");

    // The payload was unpacked and its autorun.sh ran exactly once.
    let ran = std::fs::read_to_string(&autorun_log).unwrap_or_default();
    assert_eq!(
        ran.lines().count(),
        1,
        "autorun.sh runs: {ran:?}\nagent log:\n{}",
        agent.output()
    );

    // Tamper: extend the policy PCR behind the verifier's back, as another process on the
    // machine would. tpm2-tools, not our client: `Tpm::open` on a TPM without a resource
    // manager flushes the transient objects it finds, which are the running agent's.
    extend_pcr(&tpm.tcti_string(), POLICY_PCR, 0x5a);
    let failed = wait_until(
        Duration::from_secs(30),
        "the verifier to catch the tampering",
        || async {
            let doc = cvstatus(&dep).await;
            let s = agent_status(&doc)?.clone();
            (s["operational_state"] == "Invalid Quote").then_some(s)
        },
    )
    .await;
    assert_eq!(
        failed["last_event_id"],
        format!("pcr_validation.invalid_pcr_{POLICY_PCR}"),
        "{failed}"
    );
    assert_eq!(failed["attestation_status"], "FAIL");

    // The agent received the signed revocation notice and ran the payload's action.
    let notice = wait_until(
        Duration::from_secs(30),
        "the revocation action to run",
        || {
            let text = std::fs::read_to_string(&revoked_log).ok();
            async move { text.filter(|t| !t.is_empty()) }
        },
    )
    .await;
    assert!(
        notice.contains(AGENT_ID),
        "revocation message names the agent: {notice}"
    );
    assert!(
        notice.contains("revocation"),
        "revocation message type: {notice}"
    );
    assert_eq!(
        std::fs::read_to_string(&autorun_log)
            .unwrap()
            .lines()
            .count(),
        1,
        "autorun.sh did not run again"
    );
}
