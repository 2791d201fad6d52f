//! Pairing 2: upstream Keylime 7.14.3's tenant against our registrar and verifier, with our
//! agent on swtpm. Every tenant command our verifier implements is run twice, once against
//! upstream's registrar and verifier and once against ours (each deployment with its own
//! agent and TPM, configured by the same upstream-format files); the tenant's output must be
//! the same line for line once run-specific values (ports, keys, quotes, counters, paths)
//! are masked, and its exit status must match.
//!
//! Two things legitimately depend on timing rather than on the servers, and are masked only
//! in the scenarios where they occur: the status the tenant prints right after `add` (how far
//! the verifier got with its first quote by then), and whether a DELETE of an agent that is
//! being attested answers 200 or 202 (upstream answers 200 when the agent's next poll is
//! pending in the worker that took the request, 202 otherwise, PROTOCOL.md §11 Q32; the
//! tenant then polls until the agent is gone and prints the extra lines below, and the
//! agent's status at each poll that still finds it).
//!
//! Documents are compared by value; the order of their keys (the order the server sent
//! them in, which the tenant prints) is compared separately, and the differences listed in
//! [`KNOWN_KEY_ORDER`] and [`KNOWN_MESSAGES`] (interop/FINDINGS.md) are reported but
//! tolerated; any other difference fails the test.

use std::time::Duration;

use keylime_e2e::cert_store_from_localca;
use keylime_interop::agent::{OurAgent, POLICY_PCR};
use keylime_interop::config_files::{ConfigOptions, ConfigSet};
use keylime_interop::process::GroupProcess;
use keylime_interop::services::{Implementation, start_registrar, start_verifier};
use keylime_interop::tenant::{TenantRun, upstream_tenant};
use keylime_interop::transcript::{Masks, diff, key_order_differences, normalise};
use keylime_interop::{poll, step};
use keylime_testkit::swtpm::Swtpm;

const PAIRING: &str = "pairing 2: upstream tenant + our registrar, verifier (vs upstream's)";
const ID: &str = "c0ffee00-0003-4a97-9ef7-75bd81c0e2e0";

/// Status fields whose value right after `add` depends on how far the first quote got.
const FIRST_QUOTE_RACE: &[&str] = &[
    "operational_state",
    "attestation_status",
    "hash_alg",
    "enc_alg",
    "sign_alg",
];

/// What the tenant prints on the 202 path of a delete (it polls until the agent is gone).
const DELETE_202_PATH: &[&str] = &[
    "does not have agent",
    "was deleted from",
    "still not deleted from",
];

/// Known key-order differences (scenario, document path), FINDINGS.md "Open".
const KNOWN_KEY_ORDER: &[(&str, &str)] = &[];

/// Scenarios whose error text (`status`) is known to differ, FINDINGS.md "Open".
const KNOWN_MESSAGES: &[&str] = &[];

/// The status the tenant prints at each poll of the 202 path (after its first check of the
/// agent, which names the verifier without its id).
const DELETE_POLL_STATUS: &str = "Agent Info from Verifier default";

/// One deployment: registrar and verifier of one implementation, our agent on its own TPM.
struct Side {
    which: Implementation,
    work: tempfile::TempDir,
    config: ConfigSet,
    agent: OurAgent,
    _verifier: GroupProcess,
    _registrar: GroupProcess,
}

impl Side {
    async fn deploy(which: Implementation) -> Side {
        let tpm = Swtpm::start_with_ek_certs();
        let work = tempfile::tempdir().unwrap();
        let store = cert_store_from_localca(
            tpm.localca_dir().unwrap(),
            &work.path().join("tpm_cert_store"),
        );
        let config = ConfigSet::write(
            &work.path().join("deploy"),
            &store,
            &ConfigOptions::default(),
        );
        let verifier = start_verifier(which, &config).await;
        let registrar = start_registrar(which, &config).await;
        let mut agent = OurAgent::start(&work.path().join("agent"), ID, &config, tpm);
        agent.wait_serving().await;
        agent.wait_active_at_registrar(&config).await;
        Side {
            which,
            work,
            config,
            agent,
            _verifier: verifier,
            _registrar: registrar,
        }
    }

    fn masks(&self) -> Masks {
        Masks::default()
            .with_text("work", &self.work.path().display().to_string())
            .with_port("verifier_port", self.config.verifier_port)
            .with_port("registrar_port", self.config.registrar_port)
            .with_port("registrar_tls_port", self.config.registrar_tls_port)
            .with_port("agent_port", self.agent.port)
    }

    /// `-c add` / `-c update` arguments: the zero `tpm_policy` and a `--cert` payload.
    fn enrol_args(&self, command: &str) -> Vec<String> {
        self.agent
            .upstream_enrol_args(command, &self.work.path().join("tenant-ca"))
    }

    async fn tenant(&self, args: &[String]) -> TenantRun {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        upstream_tenant(&self.config, &args).await
    }

    /// Waits until the verifier reports `state` (and, for Get Quote, a few attestations).
    async fn wait_state(&self, state: &str) -> serde_json::Value {
        let what = format!("the {} verifier to report {state}", self.which);
        let args = ["-c", "cvstatus", "-u", ID].map(String::from);
        poll(Duration::from_secs(90), &what, || async {
            let run = self.tenant(&args).await;
            let s = run.verifier_status(ID).ok_or_else(|| run.output())?;
            let enough = state != "Get Quote" || s["attestation_count"].as_u64() >= Some(2);
            if s["operational_state"] == state && enough {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        })
        .await
    }
}

/// Both deployments, and the differences seen so far.
struct Comparison {
    upstream: Side,
    ours: Side,
    differences: Vec<String>,
    known_seen: Vec<(String, String)>,
}

impl Comparison {
    /// Runs `args(side)` with upstream's tenant against both deployments and records any
    /// difference in exit status or (masked by `tune`) in output.
    async fn both(
        &mut self,
        scenario: &str,
        args: impl Fn(&Side) -> Vec<String>,
        tune: impl Fn(Masks) -> Masks,
    ) -> (TenantRun, TenantRun) {
        step(PAIRING, scenario);
        let (ua, oa) = (args(&self.upstream), args(&self.ours));
        let (u, o) = tokio::join!(self.upstream.tenant(&ua), self.ours.tenant(&oa));
        if u.code != o.code {
            self.differences.push(format!(
                "{scenario}: exit status upstream {:?}, ours {:?}\n{}\n{}",
                u.code,
                o.code,
                u.output(),
                o.output()
            ));
        }
        let known_message = KNOWN_MESSAGES.contains(&scenario);
        if known_message {
            eprintln!("    known difference (FINDINGS.md): the error text");
        }
        let tune = |m: Masks| {
            let m = tune(m);
            if known_message {
                m.with_volatile_key("status")
            } else {
                m
            }
        };
        let un = normalise(&u, &tune(self.upstream.masks()));
        let on = normalise(&o, &tune(self.ours.masks()));
        for (record, path, uk, ok) in key_order_differences(&u, &o) {
            if KNOWN_KEY_ORDER.contains(&(scenario, path.as_str())) {
                self.known_seen.push((scenario.to_string(), path.clone()));
                eprintln!(
                    "    known difference (FINDINGS.md): key order at {path}: {uk:?} / {ok:?}"
                );
            } else {
                self.differences.push(format!(
                    "{scenario}: record {record}, keys of {path} in another order:\n  upstream servers: {uk:?}\n  our servers: {ok:?}"
                ));
            }
        }
        eprintln!(
            "    exit {:?} / {:?}, {} / {} lines compared",
            u.code,
            o.code,
            un.len(),
            on.len()
        );
        if std::env::var_os("INTEROP_SHOW_TRANSCRIPTS").is_some() {
            eprintln!("    ours:\n      {}", on.join("\n      "));
        }
        if let Some(dir) = std::env::var_os("INTEROP_TRANSCRIPT_DIR") {
            let dir = std::path::Path::new(&dir);
            let stem = scenario.replace([' ', '/'], "_");
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::write(dir.join(format!("{stem}.upstream.txt")), &u.stdout);
            let _ = std::fs::write(dir.join(format!("{stem}.ours.txt")), &o.stdout);
        }
        if let Some(d) = diff("upstream servers", &un, "our servers", &on) {
            self.differences.push(format!(
                "{scenario}: `keylime_tenant {}`\n{d}",
                oa.join(" ")
            ));
        }
        (u, o)
    }
}

fn args(a: &[&str]) -> impl Fn(&Side) -> Vec<String> {
    let v: Vec<String> = a.iter().map(|s| s.to_string()).collect();
    move |_| v.clone()
}

fn exact(m: Masks) -> Masks {
    m
}

fn first_quote_race(m: Masks) -> Masks {
    FIRST_QUOTE_RACE
        .iter()
        .fold(m, |m, k| m.with_volatile_key(k))
}

fn delete_202_path(m: Masks) -> Masks {
    DELETE_202_PATH
        .iter()
        .fold(m, |m, d| m.dropping(d))
        .dropping_before(DELETE_POLL_STATUS, "deleted from the CV")
}

fn assert_ok(u: &TenantRun, o: &TenantRun) {
    assert!(o.success(), "against our servers:\n{}", o.output());
    assert!(u.success(), "against upstream's servers:\n{}", u.output());
}

fn assert_same(u: &serde_json::Value, o: &serde_json::Value, keys: &[&str]) {
    for k in keys {
        assert_eq!(u[k], o[k], "{k}: upstream {u}\nours {o}");
    }
}

/// The status our verifier reported right after `add` is a state of the first quote's way.
fn assert_early_state(o: &TenantRun) {
    let s = o
        .verifier_status(ID)
        .unwrap_or_else(|| panic!("no status after add:\n{}", o.output()));
    let state = s["operational_state"].as_str().unwrap_or_default();
    assert!(
        ["Start", "Get Quote", "Provide V"].contains(&state),
        "state right after add: {s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_prints_as_against_upstream_servers() {
    step(
        PAIRING,
        "deploying upstream's registrar + verifier and ours, each with our agent",
    );
    let upstream = Side::deploy(Implementation::Upstream).await;
    let ours = Side::deploy(Implementation::Ours).await;
    let mut cmp = Comparison {
        upstream,
        ours,
        differences: Vec::new(),
        known_seen: Vec::new(),
    };

    let (u, o) = cmp
        .both("regstatus", args(&["-c", "regstatus", "-u", ID]), exact)
        .await;
    assert_ok(&u, &o);
    o.assert_says(&format!("Agent {ID} exists on registrar"));
    let (u, o) = cmp.both("reglist", args(&["-c", "reglist"]), exact).await;
    assert_ok(&u, &o);

    let (u, o) = cmp
        .both(
            "add --tpm_policy --cert --include --verify",
            |s: &Side| s.enrol_args("add"),
            first_quote_race,
        )
        .await;
    assert_ok(&u, &o);
    o.assert_says("Successful key derivation for Agent");
    assert_early_state(&o);
    let (us, os) = (
        cmp.upstream.wait_state("Get Quote").await,
        cmp.ours.wait_state("Get Quote").await,
    );
    assert_same(
        &us,
        &os,
        &[
            "attestation_status",
            "hash_alg",
            "enc_alg",
            "sign_alg",
            "tpm_policy",
            "meta_data",
            "last_event_id",
            "severity_level",
        ],
    );
    assert_eq!(
        cmp.ours.agent.autorun_count(),
        1,
        "payload autorun.sh ran once"
    );

    for (scenario, a) in [
        ("cvstatus", vec!["-c", "cvstatus", "-u", ID]),
        ("status", vec!["-c", "status", "-u", ID]),
        ("cvlist", vec!["-c", "cvlist"]),
        ("bulkinfo", vec!["-c", "bulkinfo"]),
    ] {
        let (u, o) = cmp.both(scenario, args(&a), exact).await;
        assert_ok(&u, &o);
    }

    let (u, o) = cmp
        .both("reactivate", args(&["-c", "reactivate", "-u", ID]), exact)
        .await;
    assert_ok(&u, &o);
    o.assert_says(&format!("Agent {ID} re-activated"));
    cmp.upstream.wait_state("Get Quote").await;
    cmp.ours.wait_state("Get Quote").await;

    let (u, o) = cmp
        .both(
            "update (delete, then add again)",
            |s: &Side| s.enrol_args("update"),
            |m| delete_202_path(first_quote_race(m)),
        )
        .await;
    assert_ok(&u, &o);
    o.assert_says(&format!("Agent {ID} deleted from the CV"));
    o.assert_says("Successful key derivation for Agent");
    cmp.upstream.wait_state("Get Quote").await;
    cmp.ours.wait_state("Get Quote").await;

    step(PAIRING, "PCR 15 extended on both agents' TPMs");
    cmp.upstream.agent.tamper_policy_pcr();
    cmp.ours.agent.tamper_policy_pcr();
    let (us, os) = (
        cmp.upstream.wait_state("Invalid Quote").await,
        cmp.ours.wait_state("Invalid Quote").await,
    );
    assert_eq!(
        os["last_event_id"],
        format!("pcr_validation.invalid_pcr_{POLICY_PCR}"),
        "{os}"
    );
    assert_same(
        &us,
        &os,
        &["attestation_status", "last_event_id", "severity_level"],
    );
    let (u, o) = cmp
        .both(
            "cvstatus after the tampering",
            args(&["-c", "cvstatus", "-u", ID]),
            exact,
        )
        .await;
    assert_ok(&u, &o);

    let (u, o) = cmp
        .both("delete", args(&["-c", "delete", "-u", ID]), delete_202_path)
        .await;
    assert_ok(&u, &o);
    o.assert_says(&format!("Agent {ID} deleted from the CV"));
    cmp.both(
        "cvstatus of a deleted agent",
        args(&["-c", "cvstatus", "-u", ID]),
        exact,
    )
    .await;
    let (u, o) = cmp
        .both("regdelete", args(&["-c", "regdelete", "-u", ID]), exact)
        .await;
    assert_ok(&u, &o);
    cmp.both("reglist after regdelete", args(&["-c", "reglist"]), exact)
        .await;

    let rp = keylime_testkit::testdata("policy/keylime-create-runtime-policy/policy-sha256");
    let rp2 = keylime_testkit::testdata("policy/keylime-create-runtime-policy/policy-sha1");
    // `sha256:`-prefixed boot_aggregate digest: outside upstream's schema.
    let bad = keylime_testkit::testdata("policy/keylime/runtime-policy-test.json");
    let mb = keylime_testkit::testdata("mbpolicy/keylime/example_reference_state.json");
    let (rp, rp2, bad, mb) = (
        rp.to_str().unwrap(),
        rp2.to_str().unwrap(),
        bad.to_str().unwrap(),
        mb.to_str().unwrap(),
    );
    let rp_name = ["--runtime-policy-name", "interop-rp"];
    let mb_name = ["--mb-policy-name", "interop-mb"];
    for (scenario, a, ok) in [
        (
            "addruntimepolicy",
            [
                &["-c", "addruntimepolicy", "--runtime-policy", rp][..],
                &rp_name,
            ]
            .concat(),
            true,
        ),
        (
            "addruntimepolicy of a policy outside the schema",
            [
                &["-c", "addruntimepolicy", "--runtime-policy", bad][..],
                &["--runtime-policy-name", "interop-bad"],
            ]
            .concat(),
            false,
        ),
        (
            "addruntimepolicy of an existing name",
            [
                &["-c", "addruntimepolicy", "--runtime-policy", rp][..],
                &rp_name,
            ]
            .concat(),
            false,
        ),
        (
            "showruntimepolicy",
            [&["-c", "showruntimepolicy"][..], &rp_name].concat(),
            true,
        ),
        ("listruntimepolicy", vec!["-c", "listruntimepolicy"], true),
        (
            "updateruntimepolicy",
            [
                &["-c", "updateruntimepolicy", "--runtime-policy", rp2][..],
                &rp_name,
            ]
            .concat(),
            true,
        ),
        (
            "deleteruntimepolicy",
            [&["-c", "deleteruntimepolicy"][..], &rp_name].concat(),
            true,
        ),
        (
            "showruntimepolicy of a deleted name",
            [&["-c", "showruntimepolicy"][..], &rp_name].concat(),
            false,
        ),
        (
            "addmbpolicy",
            [&["-c", "addmbpolicy", "--mb-policy", mb][..], &mb_name].concat(),
            true,
        ),
        (
            "showmbpolicy",
            [&["-c", "showmbpolicy"][..], &mb_name].concat(),
            true,
        ),
        ("listmbpolicy", vec!["-c", "listmbpolicy"], true),
        (
            "updatembpolicy",
            [&["-c", "updatembpolicy", "--mb-policy", mb][..], &mb_name].concat(),
            true,
        ),
        (
            "deletembpolicy",
            [&["-c", "deletembpolicy"][..], &mb_name].concat(),
            true,
        ),
        (
            "updatembpolicy of a deleted name",
            [&["-c", "updatembpolicy", "--mb-policy", mb][..], &mb_name].concat(),
            false,
        ),
    ] {
        let (u, o) = cmp.both(scenario, args(&a), exact).await;
        if ok {
            assert_ok(&u, &o);
        }
    }

    for (scenario, command) in [
        ("regstatus of an unknown agent", "regstatus"),
        ("status of an unknown agent", "status"),
        ("delete of an unknown agent", "delete"),
        ("reactivate of an unknown agent", "reactivate"),
        ("regdelete of an unknown agent", "regdelete"),
    ] {
        cmp.both(scenario, args(&["-c", command, "-u", ID]), exact)
            .await;
    }

    for (scenario, path) in KNOWN_KEY_ORDER {
        if !cmp
            .known_seen
            .iter()
            .any(|(s, p)| s == scenario && p == path)
        {
            eprintln!(
                "note: the known key-order difference of {scenario} at {path} was not seen: \
                 remove it from KNOWN_KEY_ORDER and FINDINGS.md"
            );
        }
    }
    assert!(
        cmp.differences.is_empty(),
        "upstream's tenant printed differently against our servers:\n\n{}",
        cmp.differences.join("\n")
    );
}

mod runtime_policy {
    use super::*;
    use keylime_interop::scenarios;

    /// Upstream's tenant enrols our agent at our verifier with a runtime policy; our
    /// verifier checks the IMA list like upstream's does (pairing 1 runs the same scenario
    /// against upstream's verifier).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ima_list_attested_incrementally_then_unlisted_file_detected() {
        scenarios::runtime_policy(
            PAIRING,
            Implementation::Ours,
            "c0ffee00-0009-4a97-9ef7-75bd81c0e2e0",
        )
        .await;
    }
}

mod measured_boot {
    use super::*;
    use keylime_interop::scenarios;

    /// Upstream's tenant enrols our agent at our verifier with a measured-boot reference
    /// state; our verifier replays the event log against the quoted boot PCRs like
    /// upstream's does (pairing 1 runs the same scenario against upstream's verifier).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn event_log_replays_then_changed_boot_pcr_detected() {
        scenarios::measured_boot(
            PAIRING,
            Implementation::Ours,
            "c0ffee00-000a-4a97-9ef7-75bd81c0e2e0",
        )
        .await;
    }
}
