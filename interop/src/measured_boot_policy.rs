//! Measured boot under the verifier's `example` policy engine: a reference state made by
//! our `keylime-policy create measured-boot` from a real UEFI event log (and compared
//! with the one upstream's `keylime-policy` makes from the same log), upstream's tenant
//! enrolling two of our agents with it at the verifier of either implementation. The agent
//! whose TPM replays the log is attested; the one whose log (and PCRs) differ from it in the
//! kernel's boot-application digest is caught by the policy, not by the PCR replay.

use std::path::{Path, PathBuf};
use std::process::Command;

use keylime_e2e::bootlog::with_changed_digest;
use keylime_eventlog::EventType;
use keylime_testkit::swtpm::Swtpm;
use serde_json::Value;

use crate::config_files::ConfigOptions;
use crate::measured_boot::play_log_bytes;
use crate::process::scrub_env;
use crate::scenarios::Deployment;
use crate::services::Implementation;
use crate::step;
use crate::upstream::upstream;

/// The recorded log the `example` scenario uses (Secure Boot, shim, grub, a kernel on
/// PCR 4; SHA-256 only, no StartupLocality event).
pub const EXAMPLE_LOG: &str = "eventlog/keylime/mb_log.bin";

/// Runs `implementation`'s `keylime-policy create measured-boot -e <log> -o <out>` and
/// returns the reference state it wrote.
pub fn create_refstate(implementation: Implementation, log: &Path, out: &Path) -> Value {
    let program = match implementation {
        Implementation::Ours => keylime_e2e::bin("keylime-policy"),
        Implementation::Upstream => upstream().bin("keylime-policy"),
    };
    let mut cmd = Command::new(&program);
    cmd.args(["create", "measured-boot", "-e"])
        .arg(log)
        .arg("-o")
        .arg(out);
    scrub_env(&mut cmd);
    let run = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    assert!(
        run.status.success(),
        "{implementation} keylime-policy create measured-boot: {}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let text =
        std::fs::read_to_string(out).unwrap_or_else(|e| panic!("reading {}: {e}", out.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{implementation} refstate is not JSON ({e}): {text}"))
}

/// The number of the last `EV_EFI_BOOT_SERVICES_APPLICATION` event on PCR 4: the kernel.
fn kernel_event(log: &[u8]) -> usize {
    keylime_eventlog::parse(log)
        .expect("the recorded log parses")
        .events
        .iter()
        .rfind(|e| e.pcr == 4 && e.event_type == EventType::EV_EFI_BOOT_SERVICES_APPLICATION)
        .expect("a boot application on PCR 4")
        .number
}

/// The scenario against the verifier of `services` (registrar of the same implementation,
/// upstream's tenant, our agents `good` and `changed`).
pub async fn example_engine(pairing: &str, services: Implementation, good: &str, changed: &str) {
    let log_path = keylime_testkit::testdata(EXAMPLE_LOG);
    let log = std::fs::read(&log_path).expect("reading the recorded log");
    let opts = ConfigOptions {
        measured_boot_policy_name: "example".into(),
        ..ConfigOptions::default()
    };
    let spare = Swtpm::start_with_ek_certs();
    let d = Deployment::start_with(services, good, &opts, &[&spare]).await;

    step(
        pairing,
        "reference state: our keylime-policy create measured-boot (same as upstream's)",
    );
    let refstate: PathBuf = d.work.path().join("mb_refstate.json");
    let ours = create_refstate(Implementation::Ours, &log_path, &refstate);
    let theirs = create_refstate(
        Implementation::Upstream,
        &log_path,
        &d.work.path().join("mb_refstate-upstream.json"),
    );
    assert_eq!(ours, theirs, "our refstate differs from upstream's");

    step(
        pairing,
        "the recorded log played into the first agent's log and PCRs",
    );
    let events = play_log_bytes(&d.agent.mb_log_path(), &d.agent.tpm.tcti_string(), &log);
    assert!(events > 20, "{events} events extended");

    step(
        pairing,
        "upstream tenant: -c add --mb-policy (example engine)",
    );
    d.upstream_add(&["--mb-policy", refstate.to_str().unwrap()])
        .await;
    let s = d.wait_state(3, "Get Quote").await;
    assert_eq!(s["attestation_status"], "PASS", "{s}");
    assert_eq!(s["has_mb_refstate"], 1, "{s}");

    step(
        pairing,
        "a second agent whose log (and PCRs) name another kernel: caught by the policy",
    );
    let other = with_changed_digest(&log, kernel_event(&log));
    // The agent serves `<its dir>/binary_bios_measurements`; play before it starts.
    let agent_dir = d.work.path().join(changed);
    std::fs::create_dir_all(&agent_dir).expect("second agent dir");
    play_log_bytes(
        &agent_dir.join("binary_bios_measurements"),
        &spare.tcti_string(),
        &other,
    );
    let agent = d.add_agent(changed, spare).await;
    assert_eq!(
        agent.mb_log_path(),
        agent_dir.join("binary_bios_measurements")
    );
    d.upstream_add_agent(changed, &["--mb-policy", refstate.to_str().unwrap()])
        .await;
    let failed = d.wait_agent_state(changed, 0, "Invalid Quote").await;
    assert_eq!(failed["attestation_status"], "FAIL", "{failed}");
    // Upstream's verifier names the engine's failure `measured_boot.policy_<engine>`;
    // a PCR mismatch would be `measured_boot.invalid_pcr_<n>`.
    assert_eq!(
        failed["last_event_id"],
        "measured_boot.policy_example",
        "a policy failure, not a PCR mismatch: {failed}\nverifier:\n{}",
        d.verifier.output_tail(60)
    );

    step(pairing, "the first agent is unaffected");
    let s = d.wait_state(0, "Get Quote").await;
    assert_eq!(s["attestation_status"], "PASS", "{s}");
}
