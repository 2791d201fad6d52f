//! Pairing 3: mixed servers, with our agent on swtpm.
//! - our registrar with upstream's verifier and tenant (upstream's verifier generates the
//!   CA, our registrar serves with it, upstream's verifier and tenant fetch the agent's
//!   identity from our registrar);
//! - upstream's registrar with our verifier and tenant (our verifier generates the CA,
//!   upstream's registrar serves with it, our verifier and tenant fetch the agent's identity
//!   from upstream's registrar).
//!
//! Each runs the pull loop: enrolment with a `tpm_policy` and a payload, repeated
//! attestation, a PCR changed behind the verifier's back and reported, the revocation
//! notice acted on by the agent. Our tenant's every command against upstream's registrar
//! and verifier, compared with upstream's tenant's output, is in pairing 2.

use std::time::Duration;

use keylime_e2e::cert_store_from_localca;
use keylime_interop::agent::{OurAgent, POLICY_PCR, our_tenant_cert_dir, zero_pcr_policy};
use keylime_interop::config_files::{ConfigOptions, ConfigSet};
use keylime_interop::services::{
    Implementation::{self, Ours, Upstream},
    start_servers,
};
use keylime_interop::tenant::{our_tenant, upstream_tenant};
use keylime_interop::{poll, step};
use keylime_testkit::swtpm::Swtpm;
use serde_json::Value;

/// The agent's verifier status as the tenant of implementation `tenant` reports it.
async fn cv_status(tenant: Implementation, config: &ConfigSet, id: &str) -> Result<Value, String> {
    match tenant {
        Upstream => {
            let run = upstream_tenant(config, &["-c", "cvstatus", "-u", id]).await;
            run.verifier_status(id).ok_or_else(|| run.output())
        }
        Ours => {
            let (_, doc) = our_tenant(config, &["-c", "cvstatus", "-u", id]).await;
            doc["results"]
                .get(id)
                .cloned()
                .ok_or_else(|| doc.to_string())
        }
    }
}

async fn wait_state(
    tenant: Implementation,
    config: &ConfigSet,
    id: &str,
    state: &str,
    min_count: u64,
) -> Value {
    poll(
        Duration::from_secs(90),
        &format!("the verifier to report {state}"),
        || async {
            let s = cv_status(tenant, config, id).await?;
            if s["operational_state"] == state && s["attestation_count"].as_u64() >= Some(min_count)
            {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        },
    )
    .await
}

/// Registrar of one implementation, verifier and tenant of the other; the whole pull loop.
async fn pull_loop(pairing: &str, registrar: Implementation, verifier: Implementation, id: &str) {
    let tenant = verifier;
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
        pairing,
        &format!("{verifier} verifier generates cv_ca; {registrar} registrar serves with it"),
    );
    let (_verifier, _registrar) = start_servers(verifier, registrar, &mut config).await;

    step(
        pairing,
        &format!("our agent registers and activates at the {registrar} registrar"),
    );
    let mut agent = OurAgent::start(&work.path().join("agent"), id, &config, tpm);
    agent.wait_serving().await;
    agent.wait_active_at_registrar(&config).await;

    step(
        pairing,
        &format!("{tenant} tenant: -c add --tpm_policy with a payload, --verify"),
    );
    let include = agent.payload_include_dir();
    match tenant {
        Upstream => {
            agent
                .enrol_with_upstream_tenant(&config, &work.path().join("tenant-ca"))
                .await;
        }
        Ours => {
            let cert = our_tenant_cert_dir(&work.path().join("payload"), &include);
            let (ok, doc) = our_tenant(
                &config,
                &[
                    "-c",
                    "add",
                    "-u",
                    id,
                    "--tpm_policy",
                    &zero_pcr_policy(),
                    "--cert",
                    cert.to_str().unwrap(),
                    "--verify",
                ],
            )
            .await;
            assert!(
                ok,
                "our tenant add: {doc}\nagent:\n{}",
                agent.process.output_tail(40)
            );
        }
    }

    step(
        pairing,
        &format!("the {verifier} verifier attests our agent again and again"),
    );
    let status = wait_state(tenant, &config, id, "Get Quote", 3).await;
    assert_eq!(status["attestation_status"], "PASS", "{status}");
    poll(Duration::from_secs(30), "autorun.sh to run", || {
        let n = agent.autorun_count();
        async move { if n > 0 { Ok(()) } else { Err("not yet".into()) } }
    })
    .await;
    assert_eq!(
        agent.autorun_count(),
        1,
        "the payload's autorun.sh ran once"
    );

    step(pairing, "PCR 15 extended behind the verifier's back");
    agent.tamper_policy_pcr();
    let failed = wait_state(tenant, &config, id, "Invalid Quote", 0).await;
    assert_eq!(
        failed["last_event_id"],
        format!("pcr_validation.invalid_pcr_{POLICY_PCR}"),
        "{failed}"
    );
    assert_eq!(failed["attestation_status"], "FAIL", "{failed}");

    step(
        pairing,
        "the revocation notice reaches our agent, which runs its action",
    );
    let notice = agent.wait_revocation_notice().await;
    assert_eq!(notice["agent_id"], id, "{notice}");
    assert_eq!(
        notice["event_id"],
        format!("pcr_validation.invalid_pcr_{POLICY_PCR}"),
        "{notice}"
    );
}

mod our_registrar {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn upstream_verifier_and_tenant_enrol_attest_tamper_revoke() {
        pull_loop(
            "pairing 3a: our registrar + upstream verifier, tenant + our agent",
            Ours,
            Upstream,
            "c0ffee00-0004-4a97-9ef7-75bd81c0e2e0",
        )
        .await;
    }
}

mod upstream_registrar {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn our_verifier_and_tenant_enrol_attest_tamper_revoke() {
        pull_loop(
            "pairing 3b: upstream registrar + our verifier, tenant + our agent",
            Upstream,
            Ours,
            "c0ffee00-0005-4a97-9ef7-75bd81c0e2e0",
        )
        .await;
    }
}
