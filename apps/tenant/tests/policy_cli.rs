//! The policy commands through the `keylime_tenant` binary against the recording fake
//! verifier: upstream's printed lines (the answer as a Python dict, the `… command
//! response: <code>.` headers; taken from the transcript of upstream's tenant the interop
//! suite records, `common::upstream_printed`), the deprecated allowlist commands and flags,
//! `--json` documents, and exit codes (1 for failures, 2 for usage errors).

mod common;

use std::sync::Arc;

use common::fake_verifier::FakeVerifier;
use common::{upstream_lines, upstream_printed};
use serde_json::Value;

fn json_doc(stdout: &str) -> Value {
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "exactly one JSON document expected: {stdout:?}"
    );
    serde_json::from_str(lines[0]).expect("stdout is JSON")
}

fn data(path: &str) -> String {
    keylime_testkit::testdata(path).display().to_string()
}

const POLICY: &str = "policy/keylime/sign-runtime-policy/runtime-policy.json";
const MB_POLICY: &str = "mbpolicy/keylime/example_reference_state.json";

/// Runs the binary on a blocking thread (the fake verifier lives on this runtime).
async fn run(fake: &Arc<FakeVerifier>, args: &[&str]) -> (i32, String, String) {
    let fake = Arc::clone(fake);
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        fake.run_cli(&a)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_policy_commands_print_what_upstream_prints() {
    let fake = Arc::new(FakeVerifier::start().await);
    let policy = data(POLICY);

    let (code, out, err) = run(
        &fake,
        &[
            "-c",
            "addruntimepolicy",
            "--runtime-policy",
            &policy,
            "--runtime-policy-name",
            "p1",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, upstream_printed("addruntimepolicy", &[]));
    assert_eq!(fake.last_request().path, "/v2.4/allowlists/p1");

    let (code, out, _) = run(&fake, &["-c", "listruntimepolicy"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        out,
        upstream_printed("listruntimepolicy", &[("interop-rp", "p1")])
    );

    let (code, out, _) = run(
        &fake,
        &["-c", "showruntimepolicy", "--runtime-policy-name", "p1"],
    )
    .await;
    assert_eq!(code, 0);
    let mut lines = out.lines();
    let upstream = upstream_printed("showruntimepolicy", &[("interop-rp", "p1")]);
    let mut upstream = upstream.lines();
    assert_eq!(lines.next(), upstream.next());
    let body = lines.next().unwrap();
    // Up to the policy text, which is the file's.
    let head = upstream.next().unwrap();
    let head = &head[..head.find("'runtime_policy': '").unwrap()];
    assert!(
        body.starts_with(&format!(
            "{head}'runtime_policy': '{{\"meta\": {{\"version\": 1,"
        )),
        "{body}"
    );

    let (code, out, _) = run(
        &fake,
        &[
            "-c",
            "showruntimepolicy",
            "--runtime-policy-name",
            "p1",
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 0);
    let doc = json_doc(&out);
    assert_eq!(doc["command"], "showruntimepolicy");
    assert_eq!(doc["results"]["name"], "p1");
    assert_eq!(doc["results"]["runtime_policy"]["meta"]["generator"], 3);

    // Update with the checksum and key options, then a conflict and a deletion.
    let sum = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(std::fs::read(&policy).unwrap()))
    };
    let (code, out, err) = run(
        &fake,
        &[
            "-c",
            "updateruntimepolicy",
            "--runtime-policy",
            &policy,
            "--runtime-policy-checksum",
            &sum,
            "--runtime-policy-name",
            "p1",
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_doc(&out)["results"]["code"], 201);
    assert_eq!(fake.last_request().method, "PUT");

    let (code, out, err) = run(
        &fake,
        &[
            "-c",
            "addruntimepolicy",
            "--runtime-policy",
            &policy,
            "--runtime-policy-name",
            "p1",
        ],
    )
    .await;
    // Upstream's words on stdout: the verifier's answer, twice.
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        out,
        upstream_printed(
            "addruntimepolicy of an existing name",
            &[("interop-rp", "p1")]
        )
    );

    let (code, out, _) = run(
        &fake,
        &["-c", "deleteruntimepolicy", "--runtime-policy-name", "p1"],
    )
    .await;
    assert_eq!(
        (code, out),
        (0, upstream_printed("deleteruntimepolicy", &[]))
    );
    let (code, out, _) = run(
        &fake,
        &[
            "-c",
            "deleteruntimepolicy",
            "--runtime-policy-name",
            "p1",
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 1);
    let doc = json_doc(&out);
    assert_eq!(doc["ok"], false);
    assert!(doc["error"].as_str().unwrap().contains("404"), "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprecated_allowlist_commands_and_flags() {
    let fake = Arc::new(FakeVerifier::start().await);
    let (code, out, err) = run(
        &fake,
        &[
            "-c",
            "addallowlist",
            "--allowlist",
            &data("policy/keylime-tests/policy-commands/allowlist.txt"),
            "--exclude",
            &data("policy/keylime-tests/policy-commands/excludelist.txt"),
            "--allowlist-name",
            "legacy",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, upstream_printed("addruntimepolicy", &[]));
    assert!(err.contains("-c addallowlist is deprecated"), "{err}");
    assert!(err.contains("--allowlist is deprecated"), "{err}");
    let stored = fake.stored_runtime_policy("legacy").unwrap();
    assert!(
        stored.starts_with("{\"meta\": {\"version\": 1, \"generator\": 3"),
        "{stored}"
    );

    let (code, out, _) = run(
        &fake,
        &["-c", "showallowlist", "--allowlist-name", "legacy"],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(
        out.lines().next(),
        upstream_lines("showruntimepolicy").first().copied()
    );
    // --allowlist-name wins over --runtime-policy-name for show/delete, as upstream.
    let (code, _, _) = run(
        &fake,
        &[
            "-c",
            "deleteallowlist",
            "--allowlist-name",
            "legacy",
            "--runtime-policy-name",
            "other",
        ],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(fake.last_request().path, "/v2.4/allowlists/legacy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measured_boot_policy_commands() {
    let fake = Arc::new(FakeVerifier::start().await);
    // "default" is tenant.conf's mb_refstate.
    let (code, out, err) = run(
        &fake,
        &[
            "-c",
            "addmbpolicy",
            "--mb-policy",
            "default",
            "--mb-policy-name",
            "mb1",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, upstream_printed("addmbpolicy", &[]));
    let stored = fake.stored_mb_policy("mb1").unwrap().unwrap();
    let file: Value = serde_json::from_slice(&std::fs::read(data(MB_POLICY)).unwrap()).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&stored).unwrap(), file);

    // The --mb_refstate alias.
    let (code, _, err) = run(
        &fake,
        &[
            "-c",
            "updatembpolicy",
            "--mb_refstate",
            &data(MB_POLICY),
            "--mb-policy-name",
            "mb1",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(fake.last_request().method, "PUT");

    let (code, out, _) = run(&fake, &["-c", "showmbpolicy", "--mb-policy-name", "mb1"]).await;
    assert_eq!(code, 0);
    let upstream = upstream_printed("showmbpolicy", &[("interop-mb", "mb1")]);
    let head = &upstream[..upstream.find("'mb_policy': '").unwrap()];
    assert!(out.starts_with(&format!("{head}'mb_policy': '{{")), "{out}");
    let (code, out, _) = run(&fake, &["-c", "listmbpolicy"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        out,
        upstream_printed("listmbpolicy", &[("interop-mb", "mb1")])
    );
    let (code, out, _) = run(&fake, &["-c", "listmbpolicy", "--json"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        json_doc(&out)["results"]["names"],
        serde_json::json!(["mb1"])
    );

    // Updating a missing name: upstream's 409, exit 1.
    let (code, out, err) = run(
        &fake,
        &[
            "-c",
            "updatembpolicy",
            "--mb-policy",
            &data(MB_POLICY),
            "--mb-policy-name",
            "interop-mb",
        ],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        out,
        upstream_printed("updatembpolicy of a deleted name", &[])
    );

    let (code, out, _) = run(&fake, &["-c", "deletembpolicy", "--mb-policy-name", "mb1"]).await;
    assert_eq!((code, out), (0, upstream_printed("deletembpolicy", &[])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_and_usage_errors() {
    let fake = Arc::new(FakeVerifier::start().await);
    let policy = data(POLICY);
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, b"{\"meta\": ").unwrap();
    let garbage = garbage.display().to_string();

    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        // Usage errors (upstream's argparse rules): exit 2, nothing sent.
        (
            vec!["-c", "addruntimepolicy", "--runtime-policy-name", "x"],
            2,
            "--allowlist or --runtime-policy is required",
        ),
        (
            vec![
                "-c",
                "addruntimepolicy",
                "--exclude",
                &policy,
                "--runtime-policy-name",
                "x",
            ],
            2,
            "--exclude cannot be used without an --allowlist",
        ),
        (
            vec!["-c", "add", "--runtime-policy-checksum", "00"],
            2,
            "--runtime-policy-checksum must have --runtime-policy",
        ),
        (
            vec![
                "-c",
                "addruntimepolicy",
                "--runtime-policy",
                &policy,
                "--runtime-policy-url",
                "http://x",
            ],
            2,
            "cannot be specified at the same time",
        ),
        // Failures: exit 1.
        (
            vec!["-c", "addruntimepolicy", "--runtime-policy", &policy],
            1,
            "--runtime-policy-name is required to add a runtime policy",
        ),
        (
            vec![
                "-c",
                "addruntimepolicy",
                "--runtime-policy",
                &garbage,
                "--runtime-policy-name",
                "x",
            ],
            1,
            "not valid JSON",
        ),
        (
            vec![
                "-c",
                "addruntimepolicy",
                "--runtime-policy",
                &policy,
                "--runtime-policy-name",
                "x",
                "--runtime-policy-checksum",
                "abcd",
            ],
            1,
            "checksum of runtime policy",
        ),
        (
            vec![
                "-c",
                "addruntimepolicy",
                "--runtime-policy",
                "/nonexistent/p.json",
                "--runtime-policy-name",
                "x",
            ],
            1,
            "/nonexistent/p.json",
        ),
        (
            vec![
                "-c",
                "addmbpolicy",
                "--mb-policy",
                &garbage,
                "--mb-policy-name",
                "m",
            ],
            1,
            "is not valid JSON",
        ),
        (
            vec!["-c", "showmbpolicy"],
            1,
            "--mb-policy-name is required to show a measured boot policy",
        ),
        (
            vec!["-c", "deleteruntimepolicy"],
            1,
            "--runtime-policy-name is required to delete a runtime policy",
        ),
        (
            vec![
                "-c",
                "addruntimepolicy",
                "--runtime-policy-url",
                "http://x",
                "--runtime-policy-name",
                "x",
            ],
            1,
            "not yet supported",
        ),
        (
            vec!["-c", "add", "--signature-verification-key", "k.pem"],
            1,
            "not yet supported",
        ),
        (
            vec![
                "-c",
                "add",
                "--mb-policy",
                &policy,
                "--tpm_policy",
                "{\"0\": \"00\"}",
            ],
            1,
            "PCR 0 is specified in \"tpm_policy\"",
        ),
    ];
    for (args, want_code, want) in cases {
        let (code, out, err) = run(&fake, &args).await;
        assert_eq!(code, want_code, "{args:?}: {out} {err}");
        // Usage errors on stderr, failures on stdout (as upstream's tenant logs them).
        let printed = if want_code == 2 { &err } else { &out };
        assert!(printed.contains(want), "{args:?}: {out} {err}");
        let mut json_args = args.clone();
        json_args.push("--json");
        let (code, out, _) = run(&fake, &json_args).await;
        assert_eq!(code, want_code, "{args:?} --json");
        let doc = json_doc(&out);
        assert_eq!(doc["ok"], false);
        assert!(doc["error"].as_str().unwrap().contains(want), "{doc}");
    }
    assert!(
        fake.requests().is_empty(),
        "nothing reached the verifier: {:?}",
        fake.requests()
    );

    // Garbage from the verifier: exit 1 with a message naming it.
    fake.push_canned(200, b"<html>", Some("text/html"));
    let (code, out, err) = run(&fake, &["-c", "listruntimepolicy"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        out.contains("malformed response") && out.contains("not JSON"),
        "{out}"
    );
    fake.push_canned(
        200,
        b"{\"results\": {\"runtimepolicy names\": 7}}",
        Some("application/json"),
    );
    let (code, out, _) = run(&fake, &["-c", "listruntimepolicy", "--json"]).await;
    assert_eq!(code, 1);
    assert!(
        json_doc(&out)["error"]
            .as_str()
            .unwrap()
            .contains("not a list of names")
    );
}
