//! End-to-end measured boot with swtpm and the real binaries: swtpm's PCRs are extended from
//! a real UEFI event log the agent serves, and the agent is enrolled with a measured-boot
//! policy `keylime-policy create measured-boot` made from that log, under the verifier's
//! `example` policy: attested. A second machine whose log (and PCRs) differ from it in the
//! kernel's digest only is enrolled with the same policy: caught, the component named.

use std::path::Path;
use std::time::Duration;

use keylime_e2e::bootlog::{replay_into_tpm, with_changed_digest};
use keylime_e2e::deployment::Deployment;
use keylime_e2e::{Service, bin, cert_store_from_localca, wait_until};
use keylime_eventlog::EventType;
use keylime_testkit::swtpm::Swtpm;

const BOOT_LOG: &str = "eventlog/keylime/mb_log.bin";

async fn cvstatus(dep: &Deployment, id: &str) -> Option<serde_json::Value> {
    let (_, doc) = dep.tenant(&["-c", "cvstatus", "-u", id]).await;
    doc.get("results")?.get(id).cloned()
}

fn mb_policy(work: &Path, log: &Path) -> std::path::PathBuf {
    let out = work.join("mb_policy.json");
    let made = std::process::Command::new(bin("keylime-policy"))
        .args(["create", "measured-boot", "-e"])
        .arg(log)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("running keylime-policy");
    assert!(
        made.status.success(),
        "keylime-policy create measured-boot: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    out
}

/// Starts an agent on its own swtpm whose PCRs replay `log`, and enrols it.
async fn machine(
    dep: &Deployment,
    work: &Path,
    id: &str,
    log: &[u8],
    policy: &Path,
) -> (Swtpm, Service) {
    let tpm = Swtpm::start_with_ek_certs();
    let dir = work.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("binary_bios_measurements");
    std::fs::write(&log_path, log).unwrap();
    assert!(replay_into_tpm(&tpm.tcti_string(), log) > 0);
    let agent = dep
        .start_agent(
            &dir.join("agent"),
            id,
            &tpm.tcti_string(),
            &format!("measuredboot_ml_path = \"{}\"", log_path.display()),
            work,
        )
        .await;
    let (ok, added) = dep
        .tenant(&[
            "-c",
            "add",
            "-u",
            id,
            "--mb-policy",
            policy.to_str().unwrap(),
        ])
        .await;
    assert!(
        ok,
        "tenant add failed: {added}\nagent log:\n{}",
        agent.output()
    );
    (tpm, agent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_boot_log_attested_and_changed_kernel_caught() {
    let work = tempfile::tempdir().unwrap();
    let ca_tpm = Swtpm::start_with_ek_certs();
    let store = cert_store_from_localca(
        ca_tpm.localca_dir().expect("localca"),
        &work.path().join("tpm_cert_store"),
    );
    let mut dep = Deployment::write_with(
        &work.path().join("deploy"),
        &store,
        false,
        "measured_boot_policy_name = example\nmeasured_boot_evaluate = always",
    );
    let (verifier, _registrar) = dep.start_servers().await;

    let log_path = keylime_testkit::testdata(BOOT_LOG);
    let log = std::fs::read(&log_path).unwrap();
    let policy = mb_policy(work.path(), &log_path);

    // The machine that booted what the log says: attested again and again.
    const GOOD: &str = "0a6b3c2d-1e4f-4a5b-8c7d-6e5f4a3b2c1d";
    let (_good_tpm, _good_agent) = machine(&dep, work.path(), GOOD, &log, &policy).await;
    let s = wait_until(Duration::from_secs(60), "attestations", || async {
        let s = cvstatus(&dep, GOOD).await?;
        assert_ne!(
            s["operational_state"],
            "Invalid Quote",
            "{s}\nverifier log:\n{}",
            verifier.output()
        );
        (s["attestation_count"].as_u64()? >= 2).then_some(s)
    })
    .await;
    assert_eq!(s["has_mb_refstate"], 1, "{s}");

    // A machine that booted another kernel (its log and PCRs agree with each other).
    let parsed = keylime_eventlog::parse(&log).unwrap();
    let kernel = parsed
        .events
        .iter()
        .rfind(|e| e.pcr == 4 && e.event_type == EventType::EV_EFI_BOOT_SERVICES_APPLICATION)
        .expect("a boot application on PCR 4")
        .number;
    let changed = with_changed_digest(&log, kernel);
    const BAD: &str = "7f8e9d0c-1b2a-4c3d-9e8f-0a1b2c3d4e5f";
    let (_bad_tpm, _bad_agent) = machine(&dep, work.path(), BAD, &changed, &policy).await;
    let s = wait_until(
        Duration::from_secs(60),
        "the changed kernel caught",
        || async {
            let s = cvstatus(&dep, BAD).await?;
            (s["operational_state"] == "Invalid Quote").then_some(s)
        },
    )
    .await;
    let event = s["last_event_id"].as_str().unwrap_or_default();
    assert!(
        event.starts_with("measured_boot.") && !event.contains("invalid_pcr"),
        "a policy failure, not broken evidence: {s}\nverifier log:\n{}",
        verifier.output()
    );
    let out = verifier.output();
    assert!(
        out.contains(r#""component":"kernels[0].kernel_authcode_sha256""#),
        "the failure names the component:\n{out}"
    );
    // The good machine is unaffected.
    let good = cvstatus(&dep, GOOD).await.unwrap();
    assert_eq!(good["operational_state"], "Get Quote", "{good}");
}
