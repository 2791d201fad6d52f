//! Pairing 2: upstream Keylime 7.14.3's tenant and ours against our registrar and verifier,
//! and against upstream's, with our agent on swtpm. Every tenant command is run by
//! upstream's tenant against both server sets (each deployment with its own agent and TPM,
//! configured by the same upstream-format files), and by our tenant against both; each run
//! is compared with upstream's tenant's run against the same servers. Runs must exit alike
//! and print the same lines byte for byte once run-specific values (ports, keys, quotes,
//! counters, paths) are masked where they stand (`transcript::printed`): key order, layout,
//! state names and messages are compared. Commands that change state (`add`, `update`,
//! `delete`, the policy commands) are run by upstream's tenant first and by ours from the
//! same state afterwards. `regdelete` of a registered agent is run by upstream's tenant only
//! (the agent registers once); both run it on an unknown agent.
//!
//! Two things legitimately depend on timing rather than on the servers, and are masked only
//! in the scenarios where they occur: the status the tenant prints right after `add` (how far
//! the verifier got with its first quote by then), and whether a DELETE of an agent that is
//! being attested answers 200 or 202 (upstream answers 200 when the agent's next poll is
//! pending in the worker that took the request, 202 otherwise, PROTOCOL.md §11 Q32; the
//! tenant then polls until the agent is gone and prints the extra lines below, and the
//! agent's status at each poll that still finds it).
//!
//! Differences between the tenants that are known and documented (interop/FINDINGS.md) are
//! listed in [`KNOWN_TENANT_DIFFERENCES`]: each must occur (the test fails once it is gone,
//! so the list stays true); any other difference fails the test.

use std::time::Duration;

use keylime_e2e::cert_store_from_localca;
use keylime_interop::agent::{OurAgent, POLICY_PCR, our_tenant_cert_dir};
use keylime_interop::config_files::{ConfigOptions, ConfigSet};
use keylime_interop::process::GroupProcess;
use keylime_interop::services::{
    Implementation::{self, Ours, Upstream},
    start_servers,
};
use keylime_interop::tenant::{TenantRun, run_tenant};
use keylime_interop::transcript::{Masks, diff, printed};
use keylime_interop::{poll, step};
use keylime_testkit::swtpm::Swtpm;

const PAIRING: &str =
    "pairing 2: upstream's tenant and ours + our registrar, verifier (vs upstream's)";
const ID: &str = "c0ffee00-0003-4a97-9ef7-75bd81c0e2e0";

/// What upstream's tenant printed against upstream's servers in this test, masked: the
/// recorded source of the lines `apps/tenant/tests` expect.
const TRANSCRIPT: &str = "transcripts/upstream_tenant.txt";

const TRANSCRIPT_HEADER: &str = "\
# What upstream Keylime 7.14.3's keylime_tenant prints against upstream's registrar and
# verifier, scenario by scenario, recorded by
# interop/tests/pairing2_upstream_tenant_our_services.rs (which checks it on every run).
# Log prefixes are stripped; ports, paths and run-specific values are masked as <name>.
# Regenerate: INTEROP_RECORD_TRANSCRIPT=1 cargo nextest run -p keylime-interop \\
#   --test pairing2_upstream_tenant_our_services every_command
";

/// Scenarios where our tenant prints differently from upstream's against the same servers,
/// FINDINGS.md "Open differences": (scenario, what differs). Every other scenario must
/// print the same lines.
const KNOWN_TENANT_DIFFERENCES: &[(&str, &str)] = &[(
    "addruntimepolicy of a policy outside the schema",
    "ours checks the policy against the schema itself and refuses it naming the file and the field, sending nothing; upstream's sends it and prints the verifier's 400 answer twice",
)];

/// What upstream's tenant prints about the CA directory its `--cert` manages (it creates
/// the CA and the agent's and the revocation notifier's certificates on first use and
/// packages them); ours packages a directory the operator prepared (FINDINGS.md, "Open
/// differences"). Left out of the tenants' comparison of `add` and `update`, with the
/// certificate's serial and subject upstream's tenant sends as `meta_data`.
const UPSTREAM_CA_DIR: &[&str] = &[
    "CA directory does not exist",
    "CA certificate created",
    "Created certificate for name",
    "Creating cert package for",
];

/// Status fields whose value right after `add` depends on how far the first quote got.
const FIRST_QUOTE_RACE: &[&str] = &[
    "operational_state",
    "attestation_status",
    "hash_alg",
    "enc_alg",
    "sign_alg",
];

/// Status fields our tenant's `delete` shows differently from upstream's: ours runs after
/// the tampering step (so the agent it deletes has failed), upstream's before, and the
/// metadata upstream's verifier showed then (FINDINGS.md, tolerated behaviour 10).
const AFTER_TAMPERING: &[&str] = &[
    "operational_state",
    "attestation_status",
    "last_event_id",
    "severity_level",
    "meta_data",
];

/// What the tenant prints on the 202 path of a delete (it polls until the agent is gone).
const DELETE_202_PATH: &[&str] = &[
    "does not have agent",
    "was deleted from",
    "still not deleted from",
];

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
        let mut config = ConfigSet::write(
            &work.path().join("deploy"),
            &store,
            &ConfigOptions::default(),
        );
        let (verifier, registrar) = start_servers(which, which, &mut config).await;
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
            .with_text(
                "testdata",
                &keylime_testkit::testdata("").display().to_string(),
            )
    }

    /// `-c add` / `-c update` arguments for the tenant of `which`: the zero `tpm_policy`,
    /// a payload (upstream's: `--cert` with a CA it creates and `--include`; ours: `--cert`
    /// with the notifier's certificate and the payload files), and `--verify`.
    fn enrol_args(&self, which: Implementation, command: &str) -> Vec<String> {
        match which {
            Upstream => self
                .agent
                .upstream_enrol_args(command, &self.work.path().join("tenant-ca")),
            Ours => {
                let cert = our_tenant_cert_dir(
                    &self.work.path().join("payload"),
                    &self.agent.payload_include_dir(),
                );
                let mut args = self.agent.upstream_enrol_args(command, &cert);
                let include = args.iter().position(|a| a == "--include").unwrap();
                args.drain(include..include + 2);
                args
            }
        }
    }

    async fn tenant(&self, which: Implementation, args: &[String]) -> TenantRun {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_tenant(which, &self.config, &args).await
    }

    /// Waits until the verifier no longer has the agent.
    async fn wait_deleted(&self) {
        let what = format!("the {} verifier to forget the agent", self.which);
        let args = ["-c", "cvstatus", "-u", ID].map(String::from);
        poll(Duration::from_secs(60), &what, || async {
            let run = self.tenant(Upstream, &args).await;
            match run.verifier_status(ID) {
                None => Ok(()),
                Some(_) => Err(run.output()),
            }
        })
        .await
    }

    /// Waits until the verifier reports `state` (and, for Get Quote, a few attestations).
    async fn wait_state(&self, state: &str) -> serde_json::Value {
        let what = format!("the {} verifier to report {state}", self.which);
        let args = ["-c", "cvstatus", "-u", ID].map(String::from);
        poll(Duration::from_secs(90), &what, || async {
            let run = self.tenant(Upstream, &args).await;
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
    /// What upstream's tenant printed against upstream's servers, scenario by scenario
    /// (masked): checked against [`TRANSCRIPT`].
    transcript: String,
}

/// The runs of one command by one tenant: (against upstream's servers, against ours).
type Runs = (TenantRun, TenantRun);

/// One side of a comparison: a name, a run, the masks of the deployment it ran against.
type Compared<'a> = (&'a str, &'a TenantRun, Masks);

/// `None` if the two runs exited alike and printed the same lines byte for byte once
/// masked, else an account of the differences. The one comparison of this pairing: between
/// server sets (upstream's tenant against both) and between tenants (against each set).
fn compare(scenario: &str, (ln, l, lm): Compared<'_>, (rn, r, rm): Compared<'_>) -> Option<String> {
    let (lp, rp) = (printed(l, &lm), printed(r, &rm));
    if std::env::var_os("INTEROP_SHOW_TRANSCRIPTS").is_some() {
        eprintln!("    {rn}:\n      {}", rp.join("\n      "));
    }
    let mut found = Vec::new();
    if l.code != r.code {
        found.push(format!("exit status {ln} {:?}, {rn} {:?}", l.code, r.code));
    }
    found.extend(diff(ln, &lp, rn, &rp));
    (!found.is_empty()).then(|| {
        format!(
            "{scenario}: `keylime_tenant {}`\n{}\n{}\n{}",
            r.args.join(" "),
            found.join("\n"),
            l.output(),
            r.output()
        )
    })
}

impl Comparison {
    fn record(&mut self, scenario: &str, who: &str, difference: Option<String>) {
        let known = KNOWN_TENANT_DIFFERENCES
            .iter()
            .find(|(s, _)| *s == scenario)
            .filter(|_| who == "tenants");
        match (difference, known) {
            (None, None) => {}
            (Some(d), None) => self.differences.push(d),
            (Some(_), Some((_, why))) => {
                eprintln!("    known difference (FINDINGS.md): {why}");
            }
            (None, Some(_)) => eprintln!(
                "note: the known difference between the tenants in {scenario:?} was not \
                 seen: remove it from KNOWN_TENANT_DIFFERENCES and FINDINGS.md"
            ),
        }
    }

    /// Runs `args(side)` with upstream's tenant against both deployments and compares the
    /// two runs.
    async fn upstream_tenant(
        &mut self,
        scenario: &str,
        args: impl Fn(&Side) -> Vec<String>,
        tune: impl Fn(Masks) -> Masks,
    ) -> Runs {
        step(PAIRING, &format!("{scenario} (upstream's tenant)"));
        let (ua, oa) = (args(&self.upstream), args(&self.ours));
        let (u, o) = tokio::join!(
            self.upstream.tenant(Upstream, &ua),
            self.ours.tenant(Upstream, &oa)
        );
        eprintln!("    exit {:?} / {:?}", u.code, o.code);
        if let Some(dir) = std::env::var_os("INTEROP_TRANSCRIPT_DIR") {
            let dir = std::path::Path::new(&dir);
            let stem = scenario.replace([' ', '/'], "_");
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::write(dir.join(format!("{stem}.upstream.txt")), &u.stdout);
            let _ = std::fs::write(dir.join(format!("{stem}.ours.txt")), &o.stdout);
        }
        let masks = tune(self.upstream.masks());
        self.transcript.push_str(&format!(
            "## {scenario}\n$ keylime_tenant {}\n(exit {:?})\n",
            masks.apply(&ua.join(" ")),
            u.code
        ));
        for line in printed(&u, &masks) {
            self.transcript.push_str(&line);
            self.transcript.push('\n');
        }
        let d = compare(
            scenario,
            ("upstream servers", &u, masks),
            ("our servers", &o, tune(self.ours.masks())),
        );
        self.record(scenario, "servers", d);
        (u, o)
    }

    /// Runs `args(side)` with our tenant against both deployments; each run is compared
    /// with upstream's tenant's run of the same command against the same servers (`theirs`,
    /// made from the same state).
    async fn our_tenant(
        &mut self,
        scenario: &str,
        theirs: &Runs,
        args: impl Fn(&Side) -> Vec<String>,
        tune: impl Fn(Masks) -> Masks,
    ) -> Runs {
        step(PAIRING, &format!("{scenario} (our tenant)"));
        let (ua, oa) = (args(&self.upstream), args(&self.ours));
        let (u, o) = tokio::join!(self.upstream.tenant(Ours, &ua), self.ours.tenant(Ours, &oa));
        let found: Vec<Option<String>> =
            [(&self.upstream, &theirs.0, &u), (&self.ours, &theirs.1, &o)]
                .into_iter()
                .map(|(side, theirs, ours)| {
                    compare(
                        &format!("{scenario} against {} servers", side.which),
                        ("upstream's tenant", theirs, tune(side.masks())),
                        ("our tenant", ours, tune(side.masks())),
                    )
                })
                .collect();
        for d in found {
            self.record(scenario, "tenants", d);
        }
        (u, o)
    }

    /// A command that leaves the servers as it found them: upstream's tenant, then ours,
    /// against both deployments, every pair compared.
    async fn both(
        &mut self,
        scenario: &str,
        args: impl Fn(&Side) -> Vec<String> + Clone,
        tune: impl Fn(Masks) -> Masks + Clone,
    ) -> Runs {
        let theirs = self
            .upstream_tenant(scenario, args.clone(), tune.clone())
            .await;
        self.our_tenant(scenario, &theirs, args, tune).await;
        theirs
    }
}

fn args(a: &[&str]) -> impl Fn(&Side) -> Vec<String> + Clone {
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

/// The tenants' comparison of `add` and `update` ([`UPSTREAM_CA_DIR`]).
fn ca_dir(m: Masks) -> Masks {
    UPSTREAM_CA_DIR
        .iter()
        .fold(m.with_volatile_key("meta_data"), |m, d| m.dropping(d))
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

/// Both deployments back in Get Quote.
async fn both_attested(cmp: &Comparison) {
    tokio::join!(
        cmp.upstream.wait_state("Get Quote"),
        cmp.ours.wait_state("Get Quote")
    );
}

/// Both deployments without the agent at the verifier.
async fn both_deleted(cmp: &Comparison) {
    tokio::join!(cmp.upstream.wait_deleted(), cmp.ours.wait_deleted());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_prints_as_against_upstream_servers() {
    step(
        PAIRING,
        "deploying upstream's registrar + verifier and ours, each with our agent",
    );
    let (upstream, ours) = tokio::join!(
        Side::deploy(Implementation::Upstream),
        Side::deploy(Implementation::Ours)
    );
    let mut cmp = Comparison {
        upstream,
        ours,
        differences: Vec::new(),
        transcript: String::new(),
    };

    let (u, o) = cmp
        .both("regstatus", args(&["-c", "regstatus", "-u", ID]), exact)
        .await;
    assert_ok(&u, &o);
    o.assert_says(&format!("Agent {ID} exists on registrar"));
    let (u, o) = cmp.both("reglist", args(&["-c", "reglist"]), exact).await;
    assert_ok(&u, &o);
    cmp.both(
        "status of a registered agent the verifier does not have",
        args(&["-c", "status", "-u", ID]),
        exact,
    )
    .await;

    let add = cmp
        .upstream_tenant(
            "add --tpm_policy --cert --include --verify",
            |s: &Side| s.enrol_args(Upstream, "add"),
            first_quote_race,
        )
        .await;
    assert_ok(&add.0, &add.1);
    add.1.assert_says("Successful key derivation for Agent");
    assert_early_state(&add.1);
    let (us, os) = tokio::join!(
        cmp.upstream.wait_state("Get Quote"),
        cmp.ours.wait_state("Get Quote")
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

    // Reactivating restarts attestation, so ours runs once both are attested again (the
    // status it prints first is the same state's).
    let reactivate = args(&["-c", "reactivate", "-u", ID]);
    let theirs = cmp
        .upstream_tenant("reactivate", reactivate.clone(), exact)
        .await;
    assert_ok(&theirs.0, &theirs.1);
    theirs.1.assert_says(&format!("Agent {ID} re-activated"));
    both_attested(&cmp).await;
    let (u, o) = cmp
        .our_tenant("reactivate", &theirs, reactivate, exact)
        .await;
    assert_ok(&u, &o);
    both_attested(&cmp).await;

    // Commands that change the servers' state: upstream's tenant runs each first, ours
    // then runs it from the same state, and the two are compared.
    let update = |which| move |s: &Side| s.enrol_args(which, "update");
    let update_tune = |m| delete_202_path(first_quote_race(m));
    let theirs = cmp
        .upstream_tenant(
            "update (delete, then add again)",
            update(Upstream),
            update_tune,
        )
        .await;
    assert_ok(&theirs.0, &theirs.1);
    theirs
        .1
        .assert_says(&format!("Agent {ID} deleted from the CV"));
    theirs.1.assert_says("Successful key derivation for Agent");
    both_attested(&cmp).await;
    let (u, o) = cmp
        .our_tenant(
            "update (delete, then add again)",
            &theirs,
            update(Ours),
            |m| ca_dir(update_tune(m)),
        )
        .await;
    assert_ok(&u, &o);
    both_attested(&cmp).await;

    let delete = cmp
        .upstream_tenant("delete", args(&["-c", "delete", "-u", ID]), |m| {
            // upstream's side once showed the metadata of the record the update replaced
            // (FINDINGS.md, tolerated behaviour 10)
            delete_202_path(m).with_volatile_key("meta_data")
        })
        .await;
    assert_ok(&delete.0, &delete.1);
    delete
        .1
        .assert_says(&format!("Agent {ID} deleted from the CV"));
    both_deleted(&cmp).await;
    let (u, o) = cmp
        .our_tenant(
            "add --tpm_policy --cert --include --verify",
            &add,
            |s: &Side| s.enrol_args(Ours, "add"),
            |m| ca_dir(first_quote_race(m)),
        )
        .await;
    assert_ok(&u, &o);
    both_attested(&cmp).await;

    step(PAIRING, "PCR 15 extended on both agents' TPMs");
    cmp.upstream.agent.tamper_policy_pcr();
    cmp.ours.agent.tamper_policy_pcr();
    let (us, os) = tokio::join!(
        cmp.upstream.wait_state("Invalid Quote"),
        cmp.ours.wait_state("Invalid Quote")
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
        .our_tenant("delete", &delete, args(&["-c", "delete", "-u", ID]), |m| {
            AFTER_TAMPERING
                .iter()
                .fold(delete_202_path(m), |m, k| m.with_volatile_key(k))
        })
        .await;
    assert_ok(&u, &o);
    both_deleted(&cmp).await;
    cmp.both(
        "cvstatus of a deleted agent",
        args(&["-c", "cvstatus", "-u", ID]),
        exact,
    )
    .await;
    let (u, o) = cmp
        .upstream_tenant("regdelete", args(&["-c", "regdelete", "-u", ID]), exact)
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
    let policy_commands: Vec<(&str, Vec<&str>, bool)> = vec![
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
    ];
    // The whole list with upstream's tenant, then again with ours: each policy goes
    // through the same states, so each of our runs starts from the state its upstream
    // counterpart started from.
    let mut theirs = Vec::new();
    for (scenario, a, ok) in &policy_commands {
        let runs = cmp.upstream_tenant(scenario, args(a), exact).await;
        if *ok {
            assert_ok(&runs.0, &runs.1);
        }
        theirs.push(runs);
    }
    for ((scenario, a, ok), theirs) in policy_commands.iter().zip(&theirs) {
        let (u, o) = cmp.our_tenant(scenario, theirs, args(a), exact).await;
        if *ok {
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

    check_transcript(&mut cmp);
    assert!(
        cmp.differences.is_empty(),
        "the tenants printed differently:\n\n{}",
        cmp.differences.join("\n")
    );
}

/// The recorded transcript of upstream's tenant (the source of the lines the tenant's own
/// tests expect) must be what upstream's tenant prints now; `INTEROP_RECORD_TRANSCRIPT=1`
/// writes it instead.
fn check_transcript(cmp: &mut Comparison) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(TRANSCRIPT);
    let recorded = format!("{TRANSCRIPT_HEADER}{}", cmp.transcript);
    if std::env::var_os("INTEROP_RECORD_TRANSCRIPT").is_some() {
        std::fs::write(&path, &recorded)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let kept = std::fs::read_to_string(&path).unwrap_or_default();
    let (kept, now): (Vec<String>, Vec<String>) = (
        kept.lines().map(str::to_owned).collect(),
        recorded.lines().map(str::to_owned).collect(),
    );
    if let Some(d) = diff(TRANSCRIPT, &kept, "upstream's tenant now", &now) {
        cmp.differences.push(format!(
            "{TRANSCRIPT} is not what upstream's tenant prints (regenerate it with \
             INTEROP_RECORD_TRANSCRIPT=1 if upstream changed):\n{d}"
        ));
    }
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
