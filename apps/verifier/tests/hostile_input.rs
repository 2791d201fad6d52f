//! Input the verifier must refuse with a 400 and a reason rather than store or fail on
//! (values longer than their columns, a `revocation_key` that cannot sign, `metadata` that
//! is not a JSON object), and ids and policy names in paths percent-decoded as upstream
//! decodes them.

mod common;

use base64::Engine as _;
use common::{TestAgent, call, client, start_verifier, url};
use serde_json::json;

fn runtime_policy_b64() -> String {
    let text = json!({
        "meta": {"version": 1, "generator": 3},
        "release": 0,
        "digests": {"/usr/bin/bash": ["ab".repeat(32)]},
        "excludes": [],
        "keyrings": {},
        "ima": {"ignored_keyrings": [], "log_hash_alg": "sha1", "dm_policy": null},
        "ima-buf": {},
        "verification-keys": ""
    })
    .to_string();
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fields_are_400_and_paths_are_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_verifier(dir.path()).await;
    let admin = client(&v, true);
    let agent = TestAgent::start(&v.tls_dir.join("cacert.crt")).await;
    let good = agent.add_body();
    let long = "p".repeat(256);

    let with = |field: &str, value: serde_json::Value| {
        let mut b = good.clone();
        b[field] = value;
        b
    };
    let mut long_named_policy = good.clone();
    long_named_policy["runtime_policy"] = json!(runtime_policy_b64());
    long_named_policy["runtime_policy_name"] = json!(long);
    let cases = [
        (
            "long cloudagent_ip",
            with("cloudagent_ip", json!("1".repeat(256))),
            "cloudagent_ip",
        ),
        (
            "garbage revocation_key",
            with("revocation_key", json!("not a key")),
            "revocation_key",
        ),
        (
            "metadata not JSON",
            with("metadata", json!("{not json")),
            "metadata",
        ),
        (
            "metadata a list",
            with("metadata", json!("[1, 2]")),
            "metadata",
        ),
        ("long policy name", long_named_policy, "name"),
    ];
    for (what, body, needle) in cases {
        let (code, resp) = call(admin.post(url(&v, "/v2.6/agents/a1")).json(&body)).await;
        assert_eq!(code, 400, "{what}: {resp}");
        let reason = resp["status"].as_str().unwrap_or_default();
        assert!(reason.contains(needle), "{what}: {reason}");
    }
    let (_, listed) = call(admin.get(url(&v, "/v2.6/agents/"))).await;
    assert_eq!(listed["results"], json!({"uuids": []}), "nothing stored");

    // Policy names longer than their column: 400 when writing, not found when reading.
    let path = format!("/v2.6/allowlists/{long}");
    let policy = json!({"runtime_policy": runtime_policy_b64()});
    for req in [
        admin.post(url(&v, &path)).json(&policy),
        admin.put(url(&v, &path)).json(&policy),
    ] {
        let (code, resp) = call(req).await;
        assert_eq!(code, 400, "{resp}");
        assert!(
            resp["status"].as_str().unwrap().contains("policy name"),
            "{resp}"
        );
    }
    for req in [admin.get(url(&v, &path)), admin.delete(url(&v, &path))] {
        let (code, resp) = call(req).await;
        assert_eq!(code, 404, "{resp}");
    }

    // Percent-decoded policy names and agent ids.
    let (code, resp) = call(
        admin
            .post(url(&v, "/v2.6/allowlists/my%20policy"))
            .json(&policy),
    )
    .await;
    assert_eq!(code, 201, "{resp}");
    let (_, names) = call(admin.get(url(&v, "/v2.6/allowlists/"))).await;
    assert_eq!(
        names["results"]["runtimepolicy names"],
        json!(["my policy"])
    );
    let (code, shown) = call(admin.get(url(&v, "/v2.6/allowlists/my%20policy"))).await;
    assert_eq!(code, 200, "{shown}");
    assert_eq!(shown["results"]["name"], "my policy");
    let (code, resp) = call(admin.get(url(&v, "/v2.6/allowlists/my%zzpolicy"))).await;
    assert_eq!(code, 400, "{resp}");

    let (code, resp) = call(admin.post(url(&v, "/v2.6/agents/%C3%A4gent2")).json(&good)).await;
    assert_eq!(code, 200, "{resp}");
    let (_, listed) = call(admin.get(url(&v, "/v2.6/agents/"))).await;
    // Flattened: the list may nest ids per verifier (Q1 shape).
    let ids: Vec<String> = listed["results"]["uuids"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]))
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids, vec!["ägent2"], "{listed}");
    let (code, _) = call(admin.get(url(&v, "/v2.6/agents/ägent2"))).await;
    assert_eq!(code, 200);
    v.shutdown().await;
}
