//! End-to-end runtime integrity (IMA) with swtpm and the real binaries: a real measurement
//! list is replayed into swtpm's PCR 10 and served by the agent; the agent is enrolled with
//! a runtime policy that `keylime-policy create runtime` made from that same list. Then:
//! a file whose IMA signature verifies with a policy key is measured (accepted though its
//! digest is not listed), an unlisted file is measured (caught, the file named), and, on a
//! second agent, an entry is removed from the middle of the served list (a broken chain,
//! not a policy violation). A third agent is deleted and added again with a new policy that
//! lists a file measured in between, by value and then by name through a named policy
//! deleted and created again: each time the verifier attests with the new policy.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use keylime_e2e::deployment::Deployment;
use keylime_e2e::ima::{ImaEmulator, line_with_template_hash};
use keylime_e2e::{Service, bin, wait_until};
use keylime_testkit::swtpm::Swtpm;
use rsa::pkcs8::EncodePublicKey as _;
use sha2::{Digest as _, Sha256};

const REAL_LOG: &str = "ima/rust-keylime/ascii_runtime_measurements";
const KEY_ID: u32 = 0x1234_5678;

struct Enrolled {
    dep: Deployment,
    agent: Service,
    verifier: Service,
    _registrar: Service,
    ima: ImaEmulator,
    _tpm: Swtpm,
    work: tempfile::TempDir,
    list: std::path::PathBuf,
}

async fn cvstatus(dep: &Deployment, id: &str) -> Option<serde_json::Value> {
    let (_, doc) = dep.tenant(&["-c", "cvstatus", "-u", id]).await;
    doc.get("results")?.get(id).cloned()
}

/// `keylime-policy create runtime` from the served list, with `verification_keys` added.
fn runtime_policy(
    work: &Path,
    list: &Path,
    verification_keys: Option<String>,
) -> std::path::PathBuf {
    policy_file(work, list, verification_keys, "policy.json")
}

/// [`runtime_policy`] written to `work/name`.
fn policy_file(
    work: &Path,
    list: &Path,
    verification_keys: Option<String>,
    name: &str,
) -> std::path::PathBuf {
    let out = work.join(name);
    let made = std::process::Command::new(bin("keylime-policy"))
        .args(["create", "runtime", "--ima-measurement-list"])
        .arg(list)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("running keylime-policy");
    assert!(
        made.status.success(),
        "keylime-policy create runtime: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    if let Some(keys) = verification_keys {
        let mut doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        doc["verification-keys"] = serde_json::Value::String(keys);
        std::fs::write(&out, doc.to_string()).unwrap();
    }
    out
}

async fn enrol(id: &str, verification_keys: Option<String>) -> Enrolled {
    let (tpm, work, mut dep) = Deployment::with_swtpm();
    let (verifier, registrar) = dep.start_servers().await;

    let list_path = work.path().join("ascii_runtime_measurements");
    let log = std::fs::read_to_string(keylime_testkit::testdata(REAL_LOG)).unwrap();
    let ima = ImaEmulator::load(&list_path, &tpm.tcti_string(), &log);
    let policy = runtime_policy(work.path(), &list_path, verification_keys);

    let agent = dep
        .start_agent(
            &work.path().join("agent"),
            id,
            &tpm.tcti_string(),
            &format!("ima_ml_path = \"{}\"", list_path.display()),
            work.path(),
        )
        .await;
    let (ok, added) = dep
        .tenant(&[
            "-c",
            "add",
            "-u",
            id,
            "--runtime-policy",
            policy.to_str().unwrap(),
        ])
        .await;
    assert!(
        ok,
        "tenant add failed: {added}\nagent log:\n{}",
        agent.output()
    );
    Enrolled {
        dep,
        agent,
        verifier,
        _registrar: registrar,
        ima,
        _tpm: tpm,
        work,
        list: list_path,
    }
}

/// Waits until the agent has `count` more successful attestations than `after` and is
/// still in Get Quote.
async fn attested_beyond(e: &Enrolled, id: &str, after: u64, more: u64) -> u64 {
    let s = wait_until(
        Duration::from_secs(60),
        "more successful attestations",
        || async {
            let s = cvstatus(&e.dep, id).await?;
            assert_ne!(
                s["operational_state"],
                "Invalid Quote",
                "attestation failed: {s}\nverifier log:\n{}",
                e.verifier.output()
            );
            (s["operational_state"] == "Get Quote"
                && s["attestation_count"].as_u64()? >= after + more)
                .then_some(s)
        },
    )
    .await;
    assert_eq!(s["has_runtime_policy"], 1, "{s}");
    s["attestation_count"].as_u64().unwrap()
}

async fn failed(e: &Enrolled, id: &str) -> serde_json::Value {
    wait_until(
        Duration::from_secs(60),
        "the verifier to catch it",
        || async {
            let s = cvstatus(&e.dep, id).await?;
            (s["operational_state"] == "Invalid Quote").then_some(s)
        },
    )
    .await
}

/// An `ima-sig` line for `path` with `content`'s SHA-256, signed (IMA digital signature v2,
/// RSA PKCS#1 v1.5 over the file digest) with `key` under [`KEY_ID`].
fn signed_line(key: &rsa::RsaPrivateKey, path: &str, content: &[u8]) -> String {
    let digest = Sha256::digest(content);
    let sig = key
        .sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest)
        .expect("sign");
    let mut header = vec![3u8, 2, 4];
    header.extend_from_slice(&KEY_ID.to_be_bytes());
    header.extend_from_slice(&u16::try_from(sig.len()).unwrap().to_be_bytes());
    header.extend_from_slice(&sig);
    line_with_template_hash(&format!(
        "ima-sig sha256:{} {path} {}",
        hex::encode(digest),
        hex::encode(header)
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_from_own_log_then_signed_file_accepted_and_unlisted_file_caught() {
    const ID: &str = "5d1c6b9e-3a57-4c2e-9a0b-1e1f0c2d3e4f";
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key");
    let spki = key.to_public_key().to_public_key_der().expect("SPKI");
    let keyring = serde_json::json!({
        "meta": {"version": 1},
        "keyids": [KEY_ID],
        "pubkeys": [base64::engine::general_purpose::STANDARD.encode(spki.as_bytes())],
    });
    let mut e = enrol(ID, Some(keyring.to_string())).await;
    let count = attested_beyond(&e, ID, 0, 2).await;

    // A file the policy does not list, but signed by a policy key: accepted.
    e.ima.append(&signed_line(
        &key,
        "/usr/local/bin/signed-tool",
        b"signed tool v1",
    ));
    let count = attested_beyond(&e, ID, count, 2).await;

    // An unlisted, unsigned file: caught, and the event names it.
    let evil = line_with_template_hash(&format!(
        "ima-ng sha256:{} /usr/local/bin/evil-tool",
        hex::encode(Sha256::digest(b"evil"))
    ));
    e.ima.append(&evil);
    let s = failed(&e, ID).await;
    assert_eq!(
        s["last_event_id"],
        "ima.validation.ima-ng.not_in_allowlist",
        "{s}\nverifier log:\n{}",
        e.verifier.output()
    );
    assert!(count >= 4);
    let log = e.verifier.output();
    assert!(
        log.contains("/usr/local/bin/evil-tool"),
        "the failure names the file:\n{log}"
    );
    assert!(
        !log.contains("File not found in allowlist: /usr/local/bin/signed-tool"),
        "the signed file was accepted:\n{log}"
    );
    let _ = e.agent.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_removed_from_the_middle_is_a_broken_chain() {
    const ID: &str = "8e2f4a61-0b3c-4d5e-8f70-9a1b2c3d4e5f";
    let mut e = enrol(ID, None).await;
    attested_beyond(&e, ID, 0, 2).await;
    let middle = e.ima.len() / 2;
    e.ima.drop_entry(middle);
    // A new measurement so the agent's list and PCR 10 move on from the verified prefix.
    let next = line_with_template_hash(&format!(
        "ima-ng sha256:{} /usr/bin/true",
        hex::encode(Sha256::digest(b"true"))
    ));
    e.ima.append(&next);
    let s = failed(&e, ID).await;
    let event = s["last_event_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        event,
        "ima.pcr_mismatch",
        "a chain failure, not a policy one: {s}\nverifier log:\n{}",
        e.verifier.output()
    );
    let _ = e.agent.terminate().await;
}

/// Runs the tenant and asserts it succeeded.
async fn tenant_ok(e: &Enrolled, args: &[&str]) {
    let (ok, out) = e.dep.tenant(args).await;
    assert!(
        ok,
        "tenant {args:?} failed: {out}\nverifier log:\n{}",
        e.verifier.output()
    );
}

/// Deletes `id` from the verifier and waits until it is gone.
async fn delete_agent(e: &Enrolled, id: &str) {
    tenant_ok(e, &["-c", "delete", "-u", id]).await;
    wait_until(Duration::from_secs(60), "the agent gone", || async {
        cvstatus(&e.dep, id).await.is_none().then_some(())
    })
    .await;
}

/// Deletes `id` from the verifier, measures a new file and returns a policy (written to
/// `name`) made from the list that now holds it.
async fn delete_then_measure(e: &mut Enrolled, id: &str, file: &str, name: &str) -> String {
    delete_agent(e, id).await;
    e.ima.append(&line_with_template_hash(&format!(
        "ima-ng sha256:{} {file}",
        hex::encode(Sha256::digest(file.as_bytes()))
    )));
    let policy = policy_file(e.work.path(), &e.list, None, name);
    policy.to_str().unwrap().to_owned()
}

/// The named policy of [`re_added_agent_is_judged_by_its_new_policy_by_value_and_by_name`].
const NAMED: [&str; 2] = ["--runtime-policy-name", "shared-policy"];

/// Stores `policy` as the [`NAMED`] policy, adds `id` naming it, and waits until it is
/// attested.
async fn add_named_policy_and_agent(e: &Enrolled, id: &str, policy: &str) {
    let add = ["-c", "addruntimepolicy", "--runtime-policy", policy];
    tenant_ok(e, &[&add[..], &NAMED].concat()).await;
    tenant_ok(e, &[&["-c", "add", "-u", id][..], &NAMED].concat()).await;
    attested_beyond(e, id, 0, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_added_agent_is_judged_by_its_new_policy_by_value_and_by_name() {
    const ID: &str = "2b7d9c40-6e15-4f83-a2c9-7d0e5b1f3a68";
    let mut e = enrol(ID, None).await;
    attested_beyond(&e, ID, 0, 2).await;

    // By value: the policy stored under the agent's id is deleted with it and stored again.
    let policy = delete_then_measure(&mut e, ID, "/usr/local/bin/after-delete", "p2.json").await;
    tenant_ok(&e, &["-c", "add", "-u", ID, "--runtime-policy", &policy]).await;
    attested_beyond(&e, ID, 0, 2).await;

    // By name: a named policy deleted and created again under the same name.
    delete_agent(&e, ID).await;
    add_named_policy_and_agent(&e, ID, &policy).await;
    let policy = delete_then_measure(&mut e, ID, "/usr/local/bin/after-recreate", "p3.json").await;
    tenant_ok(&e, &[&["-c", "deleteruntimepolicy"][..], &NAMED].concat()).await;
    add_named_policy_and_agent(&e, ID, &policy).await;
    let _ = e.agent.terminate().await;
}
