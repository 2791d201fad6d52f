//! The runtime and measured-boot policy commands against a recording fake verifier: what
//! is sent (paths with the negotiated version, bodies as upstream's tenant builds them),
//! upstream's codes (201, 204, 404, 409), and hostile answers (non-JSON, wrong shapes,
//! framework errors) turned into clear errors.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::fake_verifier::FakeVerifier;
use keylime_tenant::{PolicyKind, PolicyOptions, TenantError};
use serde_json::{Value, json};

fn data(path: &str) -> std::path::PathBuf {
    keylime_testkit::testdata(path)
}

/// Valid v1 policies (upstream's unit-test fixtures lack `release` and are refused).
const POLICY: &str = "policy/keylime/sign-runtime-policy/runtime-policy.json";
const POLICY_2: &str = "policy/keylime-tests/policy-commands/base_policy.json";
const MB_POLICY: &str = "mbpolicy/keylime/example_reference_state.json";

fn runtime(name: &str, file: &str) -> PolicyOptions {
    PolicyOptions {
        runtime_policy: Some(data(file)),
        runtime_policy_name: Some(name.into()),
        ..PolicyOptions::default()
    }
}

fn status_code(err: &TenantError) -> Option<u16> {
    match err {
        TenantError::UnexpectedStatus { code, .. } | TenantError::Refused { code, .. } => {
            Some(*code)
        }
        _ => None,
    }
}

#[tokio::test]
async fn runtime_policy_lifecycle() {
    let fake = FakeVerifier::start().await;
    let tenant = fake.tenant();

    let r = tenant
        .add_runtime_policy(&runtime("p1", POLICY))
        .await
        .unwrap();
    assert_eq!((r.code, r.name.as_str()), (201, "p1"));
    assert_eq!(
        r.response.unwrap().repr(),
        "{'code': 201, 'status': 'Created', 'results': {}}"
    );
    let sent = fake.last_request();
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v2.4/allowlists/p1")
    );
    let file = std::fs::read(data(POLICY)).unwrap();
    assert_eq!(
        sent.json(),
        json!({
            "tpm_policy": "{\"mask\": \"0x400\"}",
            "runtime_policy": STANDARD.encode(&file),
            "runtime_policy_key": "",
        })
    );
    assert_eq!(
        fake.stored_runtime_policy("p1").unwrap().as_bytes(),
        &file[..]
    );

    // Adding the same name again: 409.
    let err = tenant
        .add_runtime_policy(&runtime("p1", POLICY))
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(409), "{err}");
    assert!(err.to_string().contains("already exists"), "{err}");

    let list = tenant.list_policies(PolicyKind::Runtime).await.unwrap();
    assert_eq!(list.names, ["p1"]);
    assert_eq!(fake.last_request().path, "/v2.4/allowlists/");

    let shown = tenant.show_policy(PolicyKind::Runtime, "p1").await.unwrap();
    assert_eq!(shown.policy.as_deref().map(str::as_bytes), Some(&file[..]));
    assert_eq!(
        shown.response.get("results").unwrap().get("tmp_policy"),
        Some(&keylime_tenant::pyjson::PyValue::Null)
    );

    // Update replaces; a missing name is a 404 for runtime policies.
    let r = tenant
        .update_runtime_policy(&runtime("p1", POLICY_2))
        .await
        .unwrap();
    assert_eq!(r.code, 201);
    assert_eq!(fake.last_request().method, "PUT");
    assert_eq!(
        fake.stored_runtime_policy("p1").unwrap().as_bytes(),
        &std::fs::read(data(POLICY_2)).unwrap()[..]
    );
    let err = tenant
        .update_runtime_policy(&runtime("nope", POLICY))
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(404), "{err}");

    // In use: 409; otherwise 204 with no body, then 404.
    fake.mark_in_use("p1");
    let err = tenant
        .delete_policy(PolicyKind::Runtime, "p1")
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(409), "{err}");
    assert!(err.to_string().contains("in use"), "{err}");
    tenant
        .add_runtime_policy(&runtime("p2", POLICY))
        .await
        .unwrap();
    let r = tenant
        .delete_policy(PolicyKind::Runtime, "p2")
        .await
        .unwrap();
    assert_eq!((r.code, r.response), (204, None));
    let err = tenant
        .delete_policy(PolicyKind::Runtime, "p2")
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(404), "{err}");
    let err = tenant
        .show_policy(PolicyKind::Runtime, "p2")
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(404), "{err}");
    assert!(
        err.to_string().contains("Runtime policy p2 not found"),
        "{err}"
    );

    // A name is one path segment.
    tenant
        .add_runtime_policy(&runtime("a/../b", POLICY))
        .await
        .unwrap();
    assert_eq!(fake.last_request().path, "/v2.4/allowlists/a%2F..%2Fb");
}

#[tokio::test]
async fn local_refusals_send_nothing() {
    let fake = FakeVerifier::start().await;
    let tenant = fake.tenant();
    let cases: Vec<(PolicyOptions, &str)> = vec![
        (
            PolicyOptions {
                runtime_policy: Some(data(POLICY)),
                ..PolicyOptions::default()
            },
            "--runtime-policy-name is required",
        ),
        (
            PolicyOptions {
                runtime_policy_name: Some("x".into()),
                ..PolicyOptions::default()
            },
            "--allowlist or --runtime-policy is required",
        ),
        (
            runtime("x", "policy/keylime-unit-tests/runtime_policy_wrong.json"),
            "missing field `release`",
        ),
        (runtime("x", POLICY_2), ""),
        (
            runtime("x", "policy/keylime/runtime-policy-test-signed.json"),
            "no key was given",
        ),
        (
            runtime(
                "x",
                "policy/keylime/sign-runtime-policy/runtime-policy-bogus.json",
            ),
            "not valid JSON",
        ),
    ];
    for (opts, want) in cases {
        match tenant.add_runtime_policy(&opts).await {
            Err(e) => assert!(e.to_string().contains(want), "{e}"),
            Ok(r) => assert_eq!((want, r.code), ("", 201), "only the valid policy passes"),
        }
    }
    let sent: Vec<_> = fake.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        sent,
        ["/v2.4/allowlists/x"],
        "only the valid policy was sent"
    );

    let err = tenant
        .delete_policy(PolicyKind::Runtime, "")
        .await
        .unwrap_err();
    assert!(matches!(err, TenantError::Policy(_)), "{err}");
    let err = tenant
        .show_policy(PolicyKind::MeasuredBoot, "")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("--mb-policy-name is required"),
        "{err}"
    );
    let err = tenant
        .add_mb_policy(&PolicyOptions {
            mb_policy: Some(data(MB_POLICY)),
            ..PolicyOptions::default()
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("--mb-policy-name is required"),
        "{err}"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn legacy_allowlist_is_converted_before_sending() {
    let fake = FakeVerifier::start().await;
    let tenant = fake.tenant();
    let opts = PolicyOptions {
        allowlist: Some(data("policy/keylime-tests/policy-commands/allowlist.txt")),
        exclude: Some(data("policy/keylime-tests/policy-commands/excludelist.txt")),
        runtime_policy_name: Some("legacy".into()),
        ..PolicyOptions::default()
    };
    tenant.add_runtime_policy(&opts).await.unwrap();
    let body = fake.last_request().json();
    assert_eq!(body["tpm_policy"], "{\"mask\": \"0x400\"}");
    let policy = STANDARD
        .decode(body["runtime_policy"].as_str().unwrap())
        .unwrap();
    let policy: Value = serde_json::from_slice(&policy).unwrap();
    assert_eq!(policy["meta"]["generator"], 3);
    assert!(!policy["digests"].as_object().unwrap().is_empty());
    assert_eq!(policy["excludes"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn measured_boot_policy_lifecycle() {
    let fake = FakeVerifier::start().await;
    let tenant = fake.tenant();
    let opts = PolicyOptions {
        mb_policy: Some(data(MB_POLICY)),
        mb_policy_name: Some("mb1".into()),
        ..PolicyOptions::default()
    };
    let r = tenant.add_mb_policy(&opts).await.unwrap();
    assert_eq!(r.code, 201);
    let sent = fake.last_request();
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v2.4/mbpolicies/mb1")
    );
    let body = sent.json();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let text = body["mb_policy"].as_str().unwrap();
    let file: Value = serde_json::from_slice(&std::fs::read(data(MB_POLICY)).unwrap()).unwrap();
    assert_eq!(serde_json::from_str::<Value>(text).unwrap(), file);
    assert!(text.contains("\", \""), "json.dumps separators: {text:.80}");

    let err = tenant.add_mb_policy(&opts).await.unwrap_err();
    assert_eq!(status_code(&err), Some(409), "{err}");

    // No file: the policy is null, as upstream sends it.
    let empty = PolicyOptions {
        mb_policy_name: Some("mb-empty".into()),
        ..PolicyOptions::default()
    };
    tenant.add_mb_policy(&empty).await.unwrap();
    assert_eq!(fake.last_request().json(), json!({"mb_policy": null}));
    assert_eq!(fake.stored_mb_policy("mb-empty"), Some(None));

    // Upstream's verifier answers 409 to a PUT on a missing name (Q16).
    let err = tenant
        .update_mb_policy(&PolicyOptions {
            mb_policy_name: Some("ghost".into()),
            ..opts.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(409), "{err}");
    tenant.update_mb_policy(&opts).await.unwrap();
    assert_eq!(fake.last_request().method, "PUT");

    let shown = tenant
        .show_policy(PolicyKind::MeasuredBoot, "mb1")
        .await
        .unwrap();
    assert_eq!(shown.policy.as_deref(), Some(text));
    let shown = tenant
        .show_policy(PolicyKind::MeasuredBoot, "mb-empty")
        .await
        .unwrap();
    assert_eq!(shown.policy, None);
    let list = tenant
        .list_policies(PolicyKind::MeasuredBoot)
        .await
        .unwrap();
    assert_eq!(list.names, ["mb-empty", "mb1"]);

    let r = tenant
        .delete_policy(PolicyKind::MeasuredBoot, "mb1")
        .await
        .unwrap();
    assert_eq!(r.code, 204);
    let err = tenant
        .delete_policy(PolicyKind::MeasuredBoot, "mb1")
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(404), "{err}");
    let err = tenant
        .show_policy(PolicyKind::MeasuredBoot, "mb1")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Measured boot policy mb1 not found"),
        "{err}"
    );
}

/// Every command fed garbage: a clear error naming the verifier, never a panic.
#[tokio::test]
async fn hostile_answers_are_clear_errors() {
    let fake = FakeVerifier::start().await;
    let tenant = fake.tenant();
    let add = || runtime("p", POLICY);
    let mb = PolicyOptions {
        mb_policy_name: Some("m".into()),
        ..PolicyOptions::default()
    };
    let json_ct = Some("application/json");
    let malformed = |e: &TenantError, want: &str| {
        assert!(
            matches!(e, TenantError::MalformedResponse { .. }),
            "expected a malformed-response error, got {e}"
        );
        let text = e.to_string();
        assert!(text.contains("Verifier") && text.contains(want), "{text}");
    };

    fake.push_canned(201, b"<html>oops</html>", Some("text/html"));
    malformed(
        &tenant.add_runtime_policy(&add()).await.unwrap_err(),
        "not JSON",
    );
    fake.push_canned(201, b"[1, 2]", json_ct);
    malformed(
        &tenant.add_mb_policy(&mb).await.unwrap_err(),
        "not a JSON object",
    );
    fake.push_canned(200, b"\xff\xfe", None);
    malformed(
        &tenant
            .delete_policy(PolicyKind::Runtime, "p")
            .await
            .unwrap_err(),
        "not JSON",
    );

    let shows: [(&[u8], &str); 6] = [
        (b"not json at all", "not JSON"),
        (b"{\"code\": 200}", "results is not an object"),
        (
            b"{\"code\": 200, \"results\": []}",
            "results is not an object",
        ),
        (
            b"{\"results\": {\"runtime_policy\": 5}}",
            "neither a string nor null",
        ),
        (
            b"{\"results\": {\"name\": \"p\"}}",
            "neither a string nor null",
        ),
        (
            b"{\"results\": {\"runtime_policy\": \"{not json\"}}",
            "is not JSON text",
        ),
    ];
    for (body, want) in shows {
        fake.push_canned(200, body, json_ct);
        malformed(
            &tenant
                .show_policy(PolicyKind::Runtime, "p")
                .await
                .unwrap_err(),
            want,
        );
    }
    fake.push_canned(200, b"{\"results\": {\"mb_policy\": {\"a\": 1}}}", json_ct);
    malformed(
        &tenant
            .show_policy(PolicyKind::MeasuredBoot, "m")
            .await
            .unwrap_err(),
        "mb_policy",
    );

    let lists: [(PolicyKind, &[u8]); 4] = [
        (
            PolicyKind::Runtime,
            b"{\"results\": {\"runtimepolicy names\": \"p\"}}",
        ),
        (
            PolicyKind::Runtime,
            b"{\"results\": {\"mbpolicy names\": []}}",
        ),
        (
            PolicyKind::MeasuredBoot,
            b"{\"results\": {\"mbpolicy names\": [1]}}",
        ),
        (PolicyKind::MeasuredBoot, b"{\"results\": null}"),
    ];
    for (kind, body) in lists {
        fake.push_canned(200, body, json_ct);
        let e = tenant.list_policies(kind).await.unwrap_err();
        assert!(matches!(e, TenantError::MalformedResponse { .. }), "{e}");
    }

    // Deep nesting is refused by the parser's limit, not by the stack.
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    fake.push_canned(200, deep.as_bytes(), json_ct);
    malformed(
        &tenant.list_policies(PolicyKind::Runtime).await.unwrap_err(),
        "not JSON",
    );

    // An oversized answer is refused before it is read.
    fake.push_canned(200, &vec![b' '; 17 << 20], json_ct);
    malformed(
        &tenant.list_policies(PolicyKind::Runtime).await.unwrap_err(),
        "larger than",
    );

    // Error codes with framework bodies: the status and the message are reported.
    fake.push_canned(500, b"", Some("text/html; charset=UTF-8"));
    let e = tenant.list_policies(PolicyKind::Runtime).await.unwrap_err();
    assert_eq!(status_code(&e), Some(500), "{e}");
    assert!(e.to_string().contains("(empty body)"), "{e}");
    fake.push_canned(
        403,
        br#"{"errors":[{"status":"403","title":"Forbidden","detail":"admin only"}]}"#,
        json_ct,
    );
    let e = tenant.add_runtime_policy(&add()).await.unwrap_err();
    assert_eq!(status_code(&e), Some(403), "{e}");
    assert!(e.to_string().contains("admin only"), "{e}");
    // A redirect is not followed and not a success.
    fake.push_canned(307, b"", None);
    let e = tenant
        .show_policy(PolicyKind::Runtime, "p")
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), Some(307), "{e}");

    // An empty 201 is accepted (nothing to show but success).
    fake.push_canned(201, b"", None);
    let r = tenant.add_mb_policy(&mb).await.unwrap();
    assert_eq!((r.code, r.response), (201, None));
}

#[tokio::test]
async fn unreachable_verifier() {
    let fake = FakeVerifier::start().await;
    let mut s = fake.settings();
    s.verifier.port = keylime_testkit::ports::closed();
    let tenant = keylime_tenant::Tenant::new(s).unwrap();
    let e = tenant
        .list_policies(PolicyKind::MeasuredBoot)
        .await
        .unwrap_err();
    assert!(matches!(e, TenantError::Unreachable { .. }), "{e}");
}
