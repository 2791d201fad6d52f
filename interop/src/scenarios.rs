//! Scenarios run against more than one pairing: upstream's tenant enrolling our agent with
//! a runtime policy or a measured-boot reference state, with the registrar and verifier of
//! either implementation. Each sets up its own deployment (swtpm with EK certificates,
//! upstream-format files, the services, our agent) and asserts every step.

use std::time::Duration;

use keylime_testkit::swtpm::Swtpm;
use serde_json::Value;

use crate::agent::OurAgent;
use crate::config_files::{ConfigOptions, ConfigSet};
use crate::ima::ImaPlayer;
use crate::measured_boot::play_event_log;
use crate::process::GroupProcess;
use crate::services::{Implementation, start_servers};
use crate::tenant::upstream_tenant;
use crate::{poll, step};

/// A deployment: registrar and verifier of one implementation and our agent, registered.
pub struct Deployment {
    pub work: tempfile::TempDir,
    pub config: ConfigSet,
    pub agent: OurAgent,
    pub verifier: GroupProcess,
    pub registrar: GroupProcess,
}

impl Deployment {
    /// Starts the services of `services` and our agent `id`, and waits until the agent is
    /// active at the registrar.
    pub async fn start(services: Implementation, id: &str) -> Deployment {
        Deployment::start_with(services, id, &ConfigOptions::default(), &[]).await
    }

    /// Like [`Deployment::start`] with `opts`; the local CAs of the `spare` TPMs (for more
    /// agents, see [`Deployment::add_agent`]) are trusted too.
    pub async fn start_with(
        services: Implementation,
        id: &str,
        opts: &ConfigOptions,
        spare: &[&Swtpm],
    ) -> Deployment {
        let tpm = Swtpm::start_with_ek_certs();
        let work = tempfile::tempdir().expect("temporary directory");
        let store = keylime_e2e::cert_store_from_localca(
            tpm.localca_dir().expect("swtpm local CA"),
            &work.path().join("tpm_cert_store"),
        );
        for (i, other) in spare.iter().enumerate() {
            trust_local_ca(other, &store, &format!("spare{i}-"));
        }
        let mut config = ConfigSet::write(&work.path().join("deploy"), &store, opts);
        let (verifier, registrar) = start_servers(services, services, &mut config).await;
        let mut agent = OurAgent::start(&work.path().join("agent"), id, &config, tpm);
        agent.wait_serving().await;
        agent.wait_active_at_registrar(&config).await;
        Deployment {
            work,
            config,
            agent,
            verifier,
            registrar,
        }
    }

    /// Starts another agent `id` of ours on `tpm` (one of the `spare` TPMs of
    /// [`Deployment::start_with`]) and waits until it is active at the registrar.
    pub async fn add_agent(&self, id: &str, tpm: Swtpm) -> OurAgent {
        let mut agent = OurAgent::start(&self.work.path().join(id), id, &self.config, tpm);
        agent.wait_serving().await;
        agent.wait_active_at_registrar(&self.config).await;
        agent
    }

    /// Waits until upstream's tenant reports `state` with at least `min` attestations.
    pub async fn wait_state(&self, min: u64, state: &str) -> Value {
        self.wait_agent_state(&self.agent.id, min, state).await
    }

    /// Like [`Deployment::wait_state`] for agent `id`.
    pub async fn wait_agent_state(&self, id: &str, min: u64, state: &str) -> Value {
        let id = id.to_string();
        poll(
            Duration::from_secs(90),
            &format!("the verifier to report {state}"),
            || async {
                let run = upstream_tenant(&self.config, &["-c", "cvstatus", "-u", &id]).await;
                let s = run.verifier_status(&id).ok_or_else(|| run.output())?;
                if s["operational_state"] == state && s["attestation_count"].as_u64() >= Some(min) {
                    Ok(s)
                } else {
                    Err(s.to_string())
                }
            },
        )
        .await
    }

    /// Runs upstream's `keylime_tenant -c add -u <id> <extra>` and asserts it succeeded.
    pub async fn upstream_add(&self, extra: &[&str]) {
        self.upstream_add_agent(&self.agent.id, extra).await;
    }

    /// Like [`Deployment::upstream_add`] for agent `id`.
    pub async fn upstream_add_agent(&self, id: &str, extra: &[&str]) {
        let mut args = vec!["-c", "add", "-u", id];
        args.extend_from_slice(extra);
        let add = upstream_tenant(&self.config, &args).await;
        assert!(
            add.success(),
            "{}\nagent:\n{}\nverifier:\n{}",
            add.output(),
            self.agent.process.output_tail(40),
            self.verifier.output_tail(40)
        );
    }
}

/// Upstream's tenant enrols our agent with a runtime policy; the verifier of `services`
/// checks the IMA list our agent serves: a recorded list (PCR 10 extended to match)
/// passes, entries appended later (fetched from `ima_ml_entry` on) pass, and an entry whose
/// file the policy does not allow is reported as `ima.validation.ima-ng.not_in_allowlist`.
pub async fn runtime_policy(pairing: &str, services: Implementation, id: &str) {
    const FIRST: usize = 20;
    const ALLOWED: usize = 25;
    let d = Deployment::start(services, id).await;

    step(
        pairing,
        "a recorded IMA list played into the agent's log and PCR 10",
    );
    let mut ima = ImaPlayer::new(&d.agent.ima_log_path(), &d.agent.tpm.tcti_string());
    ima.play(FIRST);
    let policy = ima.policy_allowing_first(ALLOWED);
    let (path, digest) = ima.file_digest(ALLOWED);
    assert!(
        !policy["digests"][&path]
            .as_array()
            .is_some_and(|a| a.contains(&serde_json::json!(digest))),
        "entry {ALLOWED} must be outside the policy"
    );
    let policy_file = d.work.path().join("runtime-policy.json");
    std::fs::write(&policy_file, policy.to_string()).expect("writing the policy");

    step(pairing, "upstream tenant: -c add --runtime-policy");
    d.upstream_add(&["--runtime-policy", policy_file.to_str().unwrap()])
        .await;

    step(
        pairing,
        "the IMA list passes the runtime policy, again and again",
    );
    let s = d.wait_state(3, "Get Quote").await;
    assert_eq!(s["attestation_status"], "PASS", "{s}");
    assert_eq!(s["has_runtime_policy"], 1, "{s}");
    let seen = s["attestation_count"].as_u64().unwrap_or_default();

    step(
        pairing,
        "allowed entries appended: fetched from ima_ml_entry on, still passing",
    );
    ima.play(ALLOWED - FIRST);
    let s = d.wait_state(seen + 3, "Get Quote").await;
    assert_eq!(s["attestation_status"], "PASS", "{s}");

    step(pairing, "an entry the policy does not allow is reported");
    ima.play(1);
    let failed = d.wait_state(0, "Invalid Quote").await;
    assert_eq!(failed["attestation_status"], "FAIL", "{failed}");
    assert_eq!(
        failed["last_event_id"], "ima.validation.ima-ng.not_in_allowlist",
        "{failed}"
    );
}

/// Upstream's tenant enrols our agent with a measured-boot reference state (`accept-all`
/// engine); the verifier of `services` replays the UEFI event log our agent serves against
/// the quoted boot PCRs: a recorded log, played into the TPM, passes; PCR 4 changed
/// afterwards is reported as `measured_boot.invalid_pcr_4`.
pub async fn measured_boot(pairing: &str, services: Implementation, id: &str) {
    const BOOT_PCR: u8 = 4;
    let d = Deployment::start(services, id).await;

    step(
        pairing,
        "a recorded UEFI event log played into the agent's log and PCRs",
    );
    let events = play_event_log(&d.agent.mb_log_path(), &d.agent.tpm.tcti_string());
    assert!(events > 50, "{events} events extended");

    step(
        pairing,
        "upstream tenant: -c add --mb-policy (reference state)",
    );
    let refstate = keylime_testkit::testdata("mbpolicy/keylime/example_reference_state.json");
    d.upstream_add(&["--mb-policy", refstate.to_str().unwrap()])
        .await;

    step(
        pairing,
        "the event log replays to the quoted boot PCRs, again and again",
    );
    let s = d.wait_state(3, "Get Quote").await;
    assert_eq!(s["attestation_status"], "PASS", "{s}");
    assert_eq!(s["has_mb_refstate"], 1, "{s}");

    step(
        pairing,
        "PCR 4 extended behind the verifier's back: the log no longer replays",
    );
    d.agent.extend_pcr(BOOT_PCR);
    let failed = d.wait_state(0, "Invalid Quote").await;
    assert_eq!(failed["attestation_status"], "FAIL", "{failed}");
    assert_eq!(
        failed["last_event_id"],
        format!("measured_boot.invalid_pcr_{BOOT_PCR}"),
        "{failed}"
    );
}

/// Copies the CA certificates of `tpm`'s local CA into `store`, names prefixed by `prefix`
/// (every swtpm has its own CA, with the same file names).
fn trust_local_ca(tpm: &Swtpm, store: &std::path::Path, prefix: &str) {
    let ca = tpm.localca_dir().expect("swtpm local CA");
    for entry in std::fs::read_dir(ca)
        .expect("reading the local CA")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with("cert.pem") {
            std::fs::copy(entry.path(), store.join(format!("{prefix}{name}")))
                .expect("copying a local CA certificate");
        }
    }
}
