//! Pairing 1: our agent with upstream Keylime 7.14.3's registrar, verifier and tenant, with
//! swtpm as the TPM. Registration and activation at upstream's registrar; enrolment by
//! upstream's tenant (`-c add` with a `tpm_policy` and a `--cert` payload, `--verify`);
//! repeated attestation by upstream's verifier; a PCR changed behind the verifier's back,
//! which upstream's verifier reports; the payload's `autorun.sh` run once and the signed
//! revocation notice acted on by our agent.

use std::time::Duration;

use keylime_e2e::cert_store_from_localca;
use keylime_interop::agent::{OurAgent, POLICY_PCR};
use keylime_interop::config_files::{ConfigOptions, ConfigSet};
use keylime_interop::services::{Implementation::Upstream, start_servers};
use keylime_interop::tenant::upstream_tenant;
use keylime_interop::{scenarios, step, wait_until};
use keylime_testkit::swtpm::Swtpm;

const PAIRING: &str = "pairing 1: our agent + upstream registrar, verifier, tenant";

mod upstream_registrar {
    use super::*;

    /// Our agent registers (EK, EK certificate, AK, mTLS certificate) and activates
    /// (TPM2_ActivateCredential, HMAC tag) at upstream's registrar; upstream's admin API and
    /// upstream's tenant (`regstatus`, `reglist`) show it active, with its EK certificate
    /// as base64 DER and a registration count of 1.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn registration_and_activation() {
        const ID: &str = "c0ffee00-0001-4a97-9ef7-75bd81c0e2e0";
        let tpm = Swtpm::start_with_ek_certs();
        let work = tempfile::tempdir().unwrap();
        let store = cert_store_from_localca(
            tpm.localca_dir().unwrap(),
            &work.path().join("tpm_cert_store"),
        );
        let mut config = ConfigSet::write(
            &work.path().join("deploy"),
            &store,
            &ConfigOptions::default(),
        );

        step(
            PAIRING,
            "upstream verifier (generates cv_ca) and upstream registrar start",
        );
        let (_verifier, _registrar) = start_servers(Upstream, Upstream, &mut config).await;

        step(
            PAIRING,
            "our agent registers and activates at upstream's registrar",
        );
        let mut agent = OurAgent::start(&work.path().join("agent"), ID, &config, tpm);
        agent.wait_serving().await;
        let record = agent.wait_active_at_registrar(&config).await;
        assert_eq!(record["regcount"], 1, "{record}");
        let ekcert = record["ekcert"]
            .as_str()
            .unwrap_or_else(|| panic!("no ekcert: {record}"));
        assert!(ekcert.starts_with("MII"), "ekcert is base64 DER: {ekcert}");
        assert_eq!(record["ip"], "127.0.0.1", "{record}");
        assert_eq!(record["port"], agent.port, "{record}");
        assert!(
            record["mtls_cert"]
                .as_str()
                .is_some_and(|c| c.contains("BEGIN CERTIFICATE")),
            "{record}"
        );

        step(PAIRING, "upstream's tenant sees it: regstatus, reglist");
        let reg = upstream_tenant(&config, &["-c", "regstatus", "-u", ID]).await;
        assert!(reg.success(), "{}", reg.output());
        reg.assert_says(&format!(
            "Agent {ID} exists on registrar 127.0.0.1 port {}",
            config.registrar_tls_port
        ));
        let info = reg
            .json_after("Agent Info from Registrar")
            .unwrap_or_else(|| panic!("{}", reg.output()));
        assert_eq!(info[ID]["regcount"], 1, "{info}");
        assert_eq!(info[ID]["ekcert"], record["ekcert"], "{info}");
        let list = upstream_tenant(&config, &["-c", "reglist"]).await;
        assert!(list.success(), "{}", list.output());
        let uuids = list
            .json_after("Agent list from Registrar")
            .unwrap_or_else(|| panic!("{}", list.output()));
        assert_eq!(uuids["uuids"], serde_json::json!([ID]), "{uuids}");
    }
}

mod upstream_verifier_and_tenant {
    use super::*;

    /// The whole pull-mode loop with upstream's services and our agent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn enrol_attest_tamper_detected_payload_and_revocation() {
        const ID: &str = "c0ffee00-0002-4a97-9ef7-75bd81c0e2e0";
        let tpm = Swtpm::start_with_ek_certs();
        let work = tempfile::tempdir().unwrap();
        let store = cert_store_from_localca(
            tpm.localca_dir().unwrap(),
            &work.path().join("tpm_cert_store"),
        );
        let mut config = ConfigSet::write(
            &work.path().join("deploy"),
            &store,
            &ConfigOptions::default(),
        );
        let (_verifier, _registrar) = start_servers(Upstream, Upstream, &mut config).await;
        let mut agent = OurAgent::start(&work.path().join("agent"), ID, &config, tpm);
        agent.wait_serving().await;
        agent.wait_active_at_registrar(&config).await;

        step(
            PAIRING,
            "upstream tenant: -c add --tpm_policy --cert --include --verify",
        );
        let add = agent
            .enrol_with_upstream_tenant(&config, &work.path().join("tenant-ca"))
            .await;
        add.assert_says(&format!(
            "Agent {ID} (127.0.0.1:{}) added to Verifier",
            agent.port
        ));
        add.assert_says(&format!("Successful key derivation for Agent {ID}"));

        step(
            PAIRING,
            "upstream verifier attests our agent again and again (Get Quote)",
        );
        let status = wait_until(
            Duration::from_secs(90),
            "three successful attestations",
            || {
                let config = &config;
                async move {
                    let run = upstream_tenant(config, &["-c", "cvstatus", "-u", ID]).await;
                    let s = run.verifier_status(ID)?;
                    (s["operational_state"] == "Get Quote" && s["attestation_count"].as_u64()? >= 3)
                        .then_some(s)
                }
            },
        )
        .await;
        assert_eq!(status["attestation_status"], "PASS", "{status}");
        assert_eq!(status["hash_alg"], "sha256", "{status}");
        assert_eq!(status["sign_alg"], "rsassa", "{status}");

        step(PAIRING, "payload delivered: autorun.sh ran once");
        wait_until(Duration::from_secs(30), "autorun.sh to run", || {
            let n = agent.autorun_count();
            async move { (n > 0).then_some(()) }
        })
        .await;
        assert_eq!(agent.autorun_count(), 1);

        step(PAIRING, "PCR 15 extended behind the verifier's back");
        agent.tamper_policy_pcr();
        let failed = wait_until(
            Duration::from_secs(60),
            "upstream's verifier to report the failure",
            || {
                let config = &config;
                async move {
                    let run = upstream_tenant(config, &["-c", "cvstatus", "-u", ID]).await;
                    let s = run.verifier_status(ID)?;
                    (s["operational_state"] == "Invalid Quote").then_some(s)
                }
            },
        )
        .await;
        assert_eq!(
            failed["last_event_id"],
            format!("pcr_validation.invalid_pcr_{POLICY_PCR}"),
            "{failed}"
        );
        assert_eq!(failed["attestation_status"], "FAIL", "{failed}");

        step(
            PAIRING,
            "the signed revocation notice reaches our agent, which runs its action",
        );
        let notice = agent.wait_revocation_notice().await;
        assert_eq!(notice["type"], "revocation", "{notice}");
        assert_eq!(notice["agent_id"], ID, "{notice}");
        assert_eq!(
            notice["event_id"],
            format!("pcr_validation.invalid_pcr_{POLICY_PCR}"),
            "{notice}"
        );
        // Our agent runs actions only for a notice whose signature verifies with the
        // payload's RevocationNotifier certificate: upstream's signing was accepted.
        assert_eq!(agent.autorun_count(), 1, "autorun.sh did not run again");
    }
}

mod upstream_verifier_runtime_policy {
    use super::*;

    /// Upstream's verifier checks the IMA measurement list our agent serves against a
    /// runtime policy: a recorded list (with PCR 10 extended to match) passes, entries
    /// appended later are fetched incrementally and pass, and an entry whose file the
    /// policy does not allow is reported.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ima_list_attested_incrementally_then_unlisted_file_detected() {
        scenarios::runtime_policy(PAIRING, Upstream, "c0ffee00-0006-4a97-9ef7-75bd81c0e2e0").await;
    }
}

mod upstream_verifier_measured_boot {
    use super::*;

    /// Upstream's verifier replays the UEFI event log our agent serves against the quoted
    /// boot PCRs: a recorded log, played into the TPM, passes; a boot PCR changed
    /// afterwards no longer matches the log and is reported.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn event_log_replays_then_changed_boot_pcr_detected() {
        scenarios::measured_boot(PAIRING, Upstream, "c0ffee00-0007-4a97-9ef7-75bd81c0e2e0").await;
    }
}
