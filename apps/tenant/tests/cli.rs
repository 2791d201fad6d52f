//! The `keylime_tenant` binary: upstream's printed status line and list output (taken from
//! the transcript of upstream's tenant the interop suite records, `common::upstream_lines`),
//! `--json` documents, exit codes for failures and argument errors.

mod common;

use common::{Services, TestAgent, upstream_lines, wait_for};
use serde_json::Value;

/// The agent id in the recorded transcript of upstream's tenant.
const UPSTREAM_ID: &str = "c0ffee00-0003-4a97-9ef7-75bd81c0e2e0";

fn json_doc(stdout: &str) -> Value {
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "exactly one JSON document expected: {stdout:?}"
    );
    serde_json::from_str(lines[0]).expect("stdout is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_status_list_delete_through_the_binary() {
    let svc = Services::start().await;
    let agent = TestAgent::start(&svc, "cli-agent", false).await;
    let svc = std::sync::Arc::new(svc);
    let run = |args: Vec<String>| {
        let svc = std::sync::Arc::clone(&svc);
        async move {
            tokio::task::spawn_blocking(move || {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                svc.run_cli(&a)
            })
            .await
            .unwrap()
        }
    };
    let s = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();

    let (code, out, err) = run(s(&["-c", "add", "-u", "cli-agent", "--json"])).await;
    assert_eq!(code, 0, "stdout {out} stderr {err}");
    let doc = json_doc(&out);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["results"]["agent_port"], agent.port);

    wait_for("Get Quote", || async move {
        let (_, out, _) = run(s(&["-c", "cvstatus", "-u", "cli-agent"])).await;
        out.contains(r#"{"cli-agent": {"#)
            .then_some(())
            .filter(|_| out.contains(r#""operational_state": "Get Quote""#))
    })
    .await;
    let (code, out, _) = run(s(&["-c", "cvstatus", "-u", "cli-agent"])).await;
    assert_eq!(code, 0);
    let upstream = upstream_lines("cvstatus")[0];
    let head = &upstream[..upstream.find("<verifier_port>").unwrap()];
    assert!(out.starts_with(head), "{out}");

    let (code, out, _) = run(s(&["-c", "status", "-u", "cli-agent", "--json"])).await;
    assert_eq!(code, 0);
    assert_eq!(
        json_doc(&out)["results"]["cli-agent"]["operational_state"],
        "Get Quote"
    );

    let (code, out, _) = run(s(&["-c", "cvlist"])).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("From verifier 127.0.0.1 port "), "{out}");
    let upstream = upstream_lines("cvlist")
        .last()
        .unwrap()
        .replace(UPSTREAM_ID, "cli-agent");
    assert_eq!(upstream, r#"{"uuids": [["cli-agent"]]}"#);
    assert!(out.contains(&upstream), "{out}");
    let (code, out, _) = run(s(&["-c", "reglist", "--json"])).await;
    assert_eq!(code, 0);
    assert_eq!(
        json_doc(&out)["results"]["uuids"],
        serde_json::json!(["cli-agent"])
    );

    // The status read before deleting, then the outcome.
    let (code, out, _) = run(s(&["-c", "delete", "-u", "cli-agent"])).await;
    assert_eq!(code, 0);
    let upstream = upstream_lines("delete");
    let head = &upstream[0][..upstream[0].find("<verifier_port>").unwrap()];
    assert!(out.starts_with(head), "{out}");
    let last = upstream.last().unwrap().replace(UPSTREAM_ID, "cli-agent");
    assert_eq!(out.trim().lines().last(), Some(last.as_str()), "{out}");

    // Failures: unknown agent, exit 1 and upstream's lines on stdout.
    let (code, out, err) = run(s(&["-c", "cvstatus", "-u", "cli-agent"])).await;
    assert_eq!(code, 1, "{out}");
    let port = out
        .split("with Port ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("{out}"));
    let upstream = common::upstream_printed(
        "cvstatus of a deleted agent",
        &[(UPSTREAM_ID, "cli-agent"), ("<verifier_port>", port)],
    );
    assert_eq!(out, upstream, "stderr: {err}");
    let (code, out, _) = run(s(&["-c", "regstatus", "-u", "ghost", "--json"])).await;
    assert_eq!(code, 1);
    let doc = json_doc(&out);
    assert_eq!(doc["ok"], false);
    assert!(doc["error"].as_str().unwrap().contains("ghost"));

    // Unreachable verifier.
    let port = keylime_testkit::ports::closed().to_string();
    let (code, out, _) = run(s(&["-c", "cvlist", "-vp", &port, "--json"])).await;
    assert_eq!(code, 1);
    assert!(
        json_doc(&out)["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach Verifier"),
        "{out}"
    );
}

#[test]
fn argument_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("tenant.conf");
    std::fs::write(&conf, "[tenant]\n").unwrap();
    let run = |args: &[&str]| common::run_cli_with(&conf, dir.path(), args);

    let (code, _, err) = run(&["-c", "frobnicate"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid command \"frobnicate\""), "{err}");
    let (code, out, _) = run(&["-c", "frobnicate", "--json"]);
    assert_eq!(code, 2);
    assert_eq!(json_doc(&out)["ok"], false);
    let (code, _, err) = run(&["--no-such-flag"]);
    assert_eq!(code, 2, "{err}");
    let (code, out, _) = run(&["--no-such-flag", "--json"]);
    assert_eq!(code, 2);
    assert_eq!(json_doc(&out)["ok"], false);
    let (code, _, err) = run(&["-c", "add", "-u", "a", "-f", "x", "--cert", "d"]);
    assert_eq!(code, 2);
    assert!(err.contains("one of -k, -f, or --cert"), "{err}");
    let (code, _, err) = run(&["-c", "add", "-u", "bad id!"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid characters"), "{err}");
    let (code, out, _) = run(&["-c", "add", "-u", "a", "--push-model"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("--push-model") && out.contains("not yet supported"),
        "{out}"
    );
    let (code, _, err) = run(&["-c", "add", "-u", "a", "-tp", "notaport"]);
    assert_eq!(code, 2, "{err}");
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--tpm_policy"));
}
