//! Faults under running services, with the real binaries, swtpm and mTLS on loopback: the
//! verifier's and registrar's PostgreSQL server stopped and started again, and the disk
//! holding their SQLite files full, while an agent is being attested. Neither service may
//! exit; the failure is logged (and, for the stopped server, answered with 503 and
//! `Retry-After`); once the database is back, attestation resumes where it
//! was, nothing enrolled or registered is lost, and a tampered agent is still caught. And
//! the agent's TPM killed under it: the agent stays up, answers 500 and logs why it cannot
//! quote; the verifier retries (a 500 is transient, as upstream's rule has it), then
//! records the agent as failed and unreachable. And the TPM killed and started again on
//! its state while the verifier still retries: the agent opens it again, loads its EK and
//! AK again and quotes, and attestation goes on without anything recorded as failed.
//! Last, the verifier host's wall clock stepped back an hour and then forward (libfaketime
//! preloaded into the verifier alone, its monotonic clock left alone as a real clock step
//! leaves it): polling goes on at its interval, every quote passes, nothing fails.

use std::time::Duration;

use keylime_e2e::deployment::{Deployment, Server};
use keylime_e2e::{Service, extend_pcr, spawn_agent, wait_until};
use keylime_testkit::postgres::PrivatePostgres;

const AGENT_ID: &str = "d432fbb3-d2f1-4a97-9ef7-75bd81c0e2f1";
const POLICY_PCR: u8 = 15;
/// Deadline of each wait for the verifier's status.
const LIMIT: Duration = Duration::from_secs(60);

/// Points the deployment's verifier and registrar at their own databases on `pg`.
fn use_postgres(dep: &Deployment, pg: &PrivatePostgres) {
    for (file, db) in [
        ("verifier.conf", "verifier"),
        ("registrar.conf", "registrar"),
    ] {
        pg.create_database(db);
        let path = dep.dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("database_url = sqlite\n"), "{text}");
        let text = text.replace(
            "database_url = sqlite\n",
            &format!("database_url = {}\n", pg.url(db)),
        );
        std::fs::write(&path, text).unwrap();
    }
}

/// Enrols the agent with a PCR policy of zeros for [`POLICY_PCR`]; asserts the tenant
/// succeeded.
async fn enrol_with_pcr_policy(dep: &Deployment) {
    let zeros = "0".repeat(64);
    let policy = format!("{{\"{POLICY_PCR}\": [\"{zeros}\"]}}");
    let (ok, added) = dep
        .tenant(&["-c", "add", "-u", AGENT_ID, "--tpm_policy", &policy])
        .await;
    assert!(ok, "tenant add: {added}");
}

/// A status of an agent in Get Quote with at least `min` attestations.
fn attesting(min: u64) -> impl Fn(&serde_json::Value) -> bool {
    move |s| {
        s["operational_state"] == "Get Quote"
            && s["attestation_count"].as_u64().is_some_and(|n| n >= min)
    }
}

/// Polls the agent's verifier status until `done` holds; on timeout panics with the last
/// answer and the verifier's log.
async fn wait_status(
    dep: &Deployment,
    verifier: &Service,
    limit: Duration,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let (ok, doc) = dep.tenant(&["-c", "cvstatus", "-u", AGENT_ID]).await;
        let status = &doc["results"][AGENT_ID];
        if ok && status.is_object() && done(status) {
            return status.clone();
        }
        if tokio::time::Instant::now() >= deadline {
            let log = verifier.output();
            panic!(
                "timed out after {limit:?} waiting for {what}; last answer {doc}\n\
                 verifier log (end):\n{}",
                &log[log.len().saturating_sub(6000)..]
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn agent_path() -> String {
    format!("/v2.6/agents/{AGENT_ID}")
}

/// `GET` of the agent on `server` answers 503 with `Retry-After` and an error envelope
/// that names the database.
async fn assert_unavailable(dep: &Deployment, server: Server) {
    let resp = dep.admin_get(server, &agent_path()).await;
    let status = resp.status().as_u16();
    let retry_after = resp.headers().get("retry-after").cloned();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    assert_eq!(status, 503, "{server:?} without its database: {body}");
    assert!(
        retry_after.is_some_and(|v| v.to_str().is_ok_and(|s| s.parse::<u64>().is_ok())),
        "{server:?}: 503 without a Retry-After in seconds"
    );
    assert_eq!(body["code"], 503, "{body}");
    assert!(
        body["status"]
            .as_str()
            .is_some_and(|s| s.contains("database cannot be reached")),
        "{server:?}: the reason names the database: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_restarted_under_running_services() {
    let pg = PrivatePostgres::start();
    let (tpm, work, mut dep) = Deployment::with_swtpm();
    use_postgres(&dep, &pg);
    let (mut verifier, mut registrar) = dep.start_servers().await;
    let (config, _) = dep.write_agent_config(&work.path().join("agent"), AGENT_ID);
    let _agent = spawn_agent("agent", &config, &tpm.tcti_string(), work.path()).await;

    enrol_with_pcr_policy(&dep).await;
    let before = wait_status(&dep, &verifier, LIMIT, "two attestations", attesting(2)).await;
    let count_before = before["attestation_count"].as_u64().unwrap();

    // The outage: every pooled connection is closed by the server. Both services say so
    // with 503 and when to try again, not with an internal error.
    pg.stop("fast");
    for server in [Server::Verifier, Server::Registrar] {
        assert_unavailable(&dep, server).await;
    }
    // The poll loop meets the outage too (it stores each attestation).
    wait_until(
        Duration::from_secs(30),
        "the verifier to log a database error",
        || {
            let log = verifier.output();
            async move { log.contains("database").then_some(()) }
        },
    )
    .await;
    for service in [&mut verifier, &mut registrar] {
        service.assert_running(&format!(
            "around the database outage; postgres log:\n{}",
            pg.log()
        ));
    }

    pg.start_again();
    let after = wait_status(
        &dep,
        &verifier,
        LIMIT,
        "attestation to resume after the database came back",
        attesting(count_before + 2),
    )
    .await;
    assert_eq!(after["attestation_status"], "PASS", "{after}");
    let (ok, reg) = dep.tenant(&["-c", "regstatus", "-u", AGENT_ID]).await;
    assert!(ok, "registrar lost the agent: {reg}");
    for server in [Server::Verifier, Server::Registrar] {
        let resp = dep.admin_get(server, &agent_path()).await;
        assert_eq!(resp.status(), 200, "{server:?} after the outage");
    }
    for service in [&mut verifier, &mut registrar] {
        service.assert_running(&format!(
            "around the database outage; postgres log:\n{}",
            pg.log()
        ));
    }

    // Still caught after the outage.
    extend_pcr(&tpm.tcti_string(), POLICY_PCR, 0x5a);
    let failed = wait_status(&dep, &verifier, LIMIT, "the tampered PCR caught", |s| {
        s["operational_state"] == "Invalid Quote"
    })
    .await;
    assert_eq!(
        failed["last_event_id"],
        format!("pcr_validation.invalid_pcr_{POLICY_PCR}"),
        "{failed}"
    );
}

/// A small tmpfs mounted over a directory for the test (needs root); unmounted (lazily, as
/// services may still hold files there) on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs on {} (needs root): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(dir.to_path_buf())
    }

    /// Writes a filler file until the disk refuses more; returns its path.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write as _;
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            if let Err(e) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
                assert_eq!(e.raw_os_error(), Some(28), "filling the disk: {e}"); // ENOSPC
                break;
            }
        }
        // The last partial chunk may have left a few bytes: take them too.
        while file.write_all(&[0u8]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_under_running_services() {
    let (tpm, work, mut dep) = Deployment::with_swtpm();
    // Both services keep their SQLite files (and the verifier its CA) in KEYLIME_DIR.
    let disk = SmallDisk::mount(&dep.keylime_dir(), "16m");
    let (mut verifier, mut registrar) = dep.start_servers().await;
    let (config, _) = dep.write_agent_config(&work.path().join("agent"), AGENT_ID);
    let _agent = spawn_agent("agent", &config, &tpm.tcti_string(), work.path()).await;
    enrol_with_pcr_policy(&dep).await;
    wait_status(&dep, &verifier, LIMIT, "two attestations", attesting(2)).await;

    let filler = disk.fill();
    wait_until(
        LIMIT,
        "the verifier to log that it could not write the agent's state",
        || {
            let log = verifier.output();
            async move { log.contains("could not persist agent state").then_some(()) }
        },
    )
    .await;
    // Reads still work; the count stands where the last write left it.
    let stalled = wait_status(&dep, &verifier, LIMIT, "status while full", |_| true).await;
    let count = stalled["attestation_count"].as_u64().unwrap();
    verifier.assert_running("under the fault");
    registrar.assert_running("under the fault");

    std::fs::remove_file(&filler).unwrap();
    let after = wait_status(
        &dep,
        &verifier,
        LIMIT,
        "attestation to resume after space was freed",
        attesting(count + 2),
    )
    .await;
    assert_eq!(after["attestation_status"], "PASS", "{after}");
    let (ok, reg) = dep.tenant(&["-c", "regstatus", "-u", AGENT_ID]).await;
    assert!(ok, "registrar lost the agent: {reg}");
    verifier.assert_running("under the fault");
    drop((verifier, registrar));
    drop(disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpm_killed_under_a_running_agent() {
    let (mut tpm, work, mut dep) = Deployment::with_swtpm();
    let (verifier, _registrar) = dep.start_servers().await;
    let (config, _) = dep.write_agent_config(&work.path().join("agent"), AGENT_ID);
    let mut agent = spawn_agent("agent", &config, &tpm.tcti_string(), work.path()).await;
    enrol_with_pcr_policy(&dep).await;
    wait_status(&dep, &verifier, LIMIT, "two attestations", attesting(2)).await;

    tpm.kill();
    let failed = wait_status(&dep, &verifier, LIMIT, "the agent failed", |s| {
        s["operational_state"] == "Failed"
    })
    .await;
    let event = failed["last_event_id"].as_str().unwrap_or_default();
    assert!(
        event.contains("not_reachable"),
        "{failed}\nagent log:\n{}",
        agent.output()
    );
    assert_eq!(failed["attestation_status"], "FAIL", "{failed}");
    assert!(
        agent.exited().is_none(),
        "the agent exited when its TPM went away:\n{}",
        agent.output()
    );
    let log = agent.output();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("TPM")),
        "the agent did not log why it could not quote:\n{log}"
    );
}

/// The agent's pull API as the verifier calls it: the verifier's client certificate, and
/// trust in the agent's own server certificate.
fn agent_client(dep: &Deployment, agent_dir: &std::path::Path) -> reqwest::Client {
    keylime_pki::install_default_provider();
    let ca = dep.cv_ca();
    let mut roots = keylime_pki::load_certs(&ca.join("cacert.crt")).unwrap();
    roots.extend(keylime_pki::load_certs(&agent_dir.join("server-cert.crt")).unwrap());
    let identity = (
        keylime_pki::load_certs(&ca.join("client-cert.crt")).unwrap(),
        keylime_pki::load_key(&ca.join("client-private.pem")).unwrap(),
    );
    let tls = keylime_pki::client_config(roots, Some(identity)).unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpm_restarted_under_a_running_agent() {
    let (mut tpm, work, mut dep) = Deployment::with_swtpm();
    // Retries enough to outlast the outage and the TPM's clock becoming safe again.
    let conf = dep.dir.join("verifier.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("max_retries = 3\n"), "{text}");
    std::fs::write(
        &conf,
        text.replace("max_retries = 3\n", "max_retries = 60\n"),
    )
    .unwrap();
    let (verifier, _registrar) = dep.start_servers().await;
    let agent_dir = work.path().join("agent");
    let (config, port) = dep.write_agent_config(&agent_dir, AGENT_ID);
    let mut agent = spawn_agent("agent", &config, &tpm.tcti_string(), work.path()).await;
    // PCR 15 stays at zeros across the TPM's restart (Startup(CLEAR) resets it to zeros).
    enrol_with_pcr_policy(&dep).await;
    let before = wait_status(&dep, &verifier, LIMIT, "two attestations", attesting(2)).await;
    let count_before = before["attestation_count"].as_u64().unwrap();
    let never_failed = |s: &serde_json::Value| {
        let state = s["operational_state"].as_str().unwrap_or_default();
        assert!(
            state != "Failed" && state != "Invalid Quote",
            "the agent was failed over a TPM restart: {s}"
        );
    };

    tpm.kill();
    let client = agent_client(&dep, &agent_dir);
    let url =
        format!("https://127.0.0.1:{port}/v2.1/quotes/integrity?nonce=abc1&mask=0x8000&partial=1");
    let refused = client
        .get(&url)
        .send()
        .await
        .expect("the agent answers without its TPM");
    assert_eq!(refused.status().as_u16(), 500, "quote without a TPM");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["status"], "Unable to retrieve quote", "{body}");
    let retrying = wait_status(&dep, &verifier, LIMIT, "the verifier to retry", |s| {
        never_failed(s);
        s["operational_state"] == "Get Quote (retry)"
    })
    .await;
    let count_retrying = retrying["attestation_count"].as_u64().unwrap();

    tpm.restart().expect("swtpm starts again on its state");
    let after = wait_status(
        &dep,
        &verifier,
        LIMIT,
        "attestation to resume after the TPM came back",
        |s| {
            never_failed(s);
            attesting(count_retrying.max(count_before) + 2)(s)
        },
    )
    .await;
    assert_eq!(after["attestation_status"], "PASS", "{after}");
    agent.assert_running("around the TPM restart");
    let log = agent.output();
    assert!(
        log.contains("TPM connection re-established"),
        "the agent did not say it re-established its TPM:\n{log}"
    );
    let served = client
        .get(url.replace("abc1", "abc2"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        served.status().as_u16(),
        200,
        "{}",
        served.text().await.unwrap()
    );
}

/// libfaketime from Debian's `faketime` package (the thread-safe build), or a loud panic.
fn libfaketime() -> std::path::PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("libfaketime is not installed: apt-get install faketime (scripts/install-deps.sh)")
    })
}

fn unix_now() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    i64::try_from(now.unwrap().as_secs()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_wall_clock_stepped_back_and_forward() {
    let (tpm, work, mut dep) = Deployment::with_swtpm();
    // libfaketime reads the offset from this file on every clock call.
    let offset = work.path().join("verifier-clock");
    std::fs::write(&offset, "+0\n").unwrap();
    dep.verifier_env = vec![
        ("LD_PRELOAD", libfaketime().display().to_string()),
        ("FAKETIME_TIMESTAMP_FILE", offset.display().to_string()),
        ("FAKETIME_NO_CACHE", "1".into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
    ];
    let (mut verifier, _registrar) = dep.start_servers().await;
    let (config, _) = dep.write_agent_config(&work.path().join("agent"), AGENT_ID);
    let _agent = spawn_agent("agent", &config, &tpm.tcti_string(), work.path()).await;
    enrol_with_pcr_policy(&dep).await;
    wait_status(&dep, &verifier, LIMIT, "two attestations", attesting(2)).await;

    for (step, shift) in [("back", -3600i64), ("forward", 3600)] {
        std::fs::write(&offset, format!("{shift:+}\n")).unwrap();
        // The first quote stamped by the stepped clock proves the step took effect.
        let stepped = move |s: &serde_json::Value| {
            let at = s["last_received_quote"].as_i64().unwrap_or_default();
            (at - unix_now() - shift).abs() < 600
        };
        let first = wait_status(
            &dep,
            &verifier,
            LIMIT,
            &format!("a quote recorded after the clock stepped {step}"),
            |s| {
                assert_eq!(
                    s["operational_state"], "Get Quote",
                    "clock stepped {step}: {s}"
                );
                stepped(s)
            },
        )
        .await;
        let count = first["attestation_count"].as_u64().unwrap();
        let after = wait_status(
            &dep,
            &verifier,
            LIMIT,
            &format!("polling to go on after the clock stepped {step}"),
            |s| {
                assert_eq!(
                    s["operational_state"], "Get Quote",
                    "clock stepped {step}: {s}"
                );
                stepped(s) && attesting(count + 3)(s)
            },
        )
        .await;
        assert_eq!(after["attestation_status"], "PASS", "{after}");
        assert!(after["last_event_id"].is_null(), "{after}");
    }
    verifier.assert_running("across the clock steps");
}
