//! The verifier's v2.x API over real TLS on loopback: version, admin authorization (403
//! without a client certificate), add with upstream's body, status shape, list (Q1 shape)
//! and bulk, duplicate add, bad bodies refused with nothing stored, stop, reactivate,
//! unknown ids, delete.

mod common;

use std::time::Duration;

use common::{TestAgent, call, client, start_verifier, status, url, wait_status};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_api_shapes_auth_and_validation() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_verifier(dir.path()).await;
    let admin = client(&v, true);
    let anon = client(&v, false);

    let (code, body) = call(anon.get(url(&v, "/version"))).await;
    assert_eq!(code, 200);
    assert_eq!(body["results"]["current_version"], "2.6");

    for (method, path) in [
        ("GET", "/v2.6/agents/"),
        ("POST", "/v2.6/agents/a1"),
        ("GET", "/v2.1/agents/a1"),
        ("DELETE", "/v2/agents/a1"),
        ("PUT", "/v2.6/agents/a1/stop"),
    ] {
        let req = anon
            .request(method.parse().unwrap(), url(&v, path))
            .json(&json!({}));
        let (code, body) = call(req).await;
        assert_eq!(code, 403, "{method} {path}");
        assert_eq!(body["errors"][0]["title"], "Forbidden", "{body}");
    }

    let agent = TestAgent::start(&v.tls_dir.join("cacert.crt")).await;
    let good = agent.add_body();

    // Bad bodies: 400 with a reason, nothing stored.
    let mut bad_bodies = Vec::new();
    for field in [
        "tpm_policy",
        "ak_tpm",
        "accept_tpm_hash_algs",
        "mtls_cert",
        "cloudagent_ip",
    ] {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(field);
        bad_bodies.push((field.to_string(), b.to_string()));
    }
    let mut b = good.clone();
    b["ak_tpm"] = json!("AAAA");
    bad_bodies.push(("garbage ak".into(), b.to_string()));
    let mut b = good.clone();
    b["tpm_policy"] = json!("{\"0\": [\"zz\"], \"mask\": \"0x1\"}");
    bad_bodies.push(("non-hex policy".into(), b.to_string()));
    let mut b = good.clone();
    b["tpm_policy"] = json!("{}");
    bad_bodies.push(("no mask".into(), b.to_string()));
    let mut b = good.clone();
    b["v"] = json!("AAAA");
    bad_bodies.push(("short v".into(), b.to_string()));
    bad_bodies.push(("not json".into(), "{not json".into()));
    for (what, body) in bad_bodies {
        let (code, resp) = call(admin.post(url(&v, "/v2.6/agents/a1")).body(body)).await;
        assert_eq!(code, 400, "{what}: {resp}");
        assert!(
            !resp["status"].as_str().unwrap_or("").is_empty(),
            "{what}: no reason"
        );
    }
    let (code, _) = call(
        admin
            .post(url(&v, "/v2.6/agents/a1"))
            .body(vec![b'x'; 300 * 1024]),
    )
    .await;
    assert_eq!(code, 413);
    let (code, _) = call(admin.post(url(&v, "/v2.6/agents/bad%20id")).json(&good)).await;
    assert_eq!(code, 400);
    let (code, body) = call(admin.get(url(&v, "/v2.6/agents/"))).await;
    assert_eq!(
        (code, body["results"].clone()),
        (200, json!({"uuids": []})),
        "nothing stored"
    );

    // Add, then the status document has upstream's fields.
    let (code, body) = call(admin.post(url(&v, "/v2.6/agents/a1")).json(&good)).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = call(admin.post(url(&v, "/v2.6/agents/a1")).json(&good)).await;
    assert_eq!(code, 409, "{body}");
    let st = wait_status(
        &admin,
        &v,
        "a1",
        Duration::from_secs(30),
        "first attestation",
        |c, b| c == 200 && b["results"]["attestation_count"].as_u64() >= Some(1),
    )
    .await;
    let r = &st["results"];
    let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = vec![
        "operational_state",
        "v",
        "ip",
        "port",
        "tpm_policy",
        "meta_data",
        "has_mb_refstate",
        "has_runtime_policy",
        "accept_tpm_hash_algs",
        "accept_tpm_encryption_algs",
        "accept_tpm_signing_algs",
        "hash_alg",
        "enc_alg",
        "sign_alg",
        "verifier_id",
        "verifier_ip",
        "verifier_port",
        "severity_level",
        "last_event_id",
        "attestation_count",
        "last_received_quote",
        "last_successful_attestation",
        "attestation_status",
        "attestation_period",
        "maximum_attestation_interval",
    ];
    want.sort_unstable();
    assert_eq!(keys, want);
    assert_eq!(r["operational_state"], 3);
    assert_eq!(r["attestation_status"], "PASS");
    assert_eq!(r["hash_alg"], "sha256");
    assert_eq!(r["verifier_id"], "default");
    assert_eq!(r["port"], agent.port);
    assert_eq!(r["attestation_period"], "0s");
    assert!(r["tpm_policy"].as_str().unwrap().contains("mask"));
    assert!(r["last_successful_attestation"].as_i64().unwrap() > 1_700_000_000);

    // List: Q1 shape, and bulk.
    let (code, body) = call(admin.get(url(&v, "/v2.6/agents/?verifier=default"))).await;
    assert_eq!(
        (code, body["results"].clone()),
        (200, json!({"uuids": [["a1"]]}))
    );
    let (_, body) = call(admin.get(url(&v, "/v2.6/agents/?verifier=other"))).await;
    assert_eq!(body["results"], json!({"uuids": []}));
    let (code, body) = call(admin.get(url(&v, "/v2.6/agents/?bulk=True"))).await;
    assert_eq!(code, 200);
    assert_eq!(body["results"]["a1"]["verifier_id"], "default");

    // Stop → 10, polling halts; reactivate → polling again.
    let (code, _) = call(admin.put(url(&v, "/v2.6/agents/a1/stop"))).await;
    assert_eq!(code, 200);
    let st = status(&admin, &v, "a1").await.1;
    assert_eq!(st["results"]["operational_state"], 10);
    assert_eq!(st["results"]["attestation_status"], "FAIL");
    let count_at_stop = st["results"]["attestation_count"].as_u64().unwrap();
    let (code, _) = call(admin.put(url(&v, "/v2.6/agents/a1/reactivate"))).await;
    assert_eq!(code, 200);
    wait_status(
        &admin,
        &v,
        "a1",
        Duration::from_secs(30),
        "polling after reactivate",
        |_, b| {
            b["results"]["operational_state"] == 3
                && b["results"]["attestation_count"].as_u64() > Some(count_at_stop + 1)
        },
    )
    .await;

    // Unknown ids (Q22, §5.3).
    for path in ["/v2.6/agents/nope/stop", "/v2.6/agents/nope/reactivate"] {
        let (code, body) = call(admin.put(url(&v, path))).await;
        assert_eq!(code, 400, "{path}");
        assert!(
            body["status"]
                .as_str()
                .unwrap()
                .contains("No row was found")
        );
    }
    let (code, body) = status(&admin, &v, "nope").await;
    assert_eq!(
        (code, body["status"].clone()),
        (404, json!("agent id not found"))
    );

    // Delete a polling agent: 202 (TERMINATED), then gone (Q32).
    let (code, _) = call(admin.delete(url(&v, "/v2.6/agents/a1"))).await;
    assert!(code == 202 || code == 200, "delete answered {code}");
    wait_status(
        &admin,
        &v,
        "a1",
        Duration::from_secs(10),
        "deletion",
        |c, _| c == 404,
    )
    .await;
    let (code, _) = call(admin.delete(url(&v, "/v2.6/agents/a1"))).await;
    assert_eq!(code, 404);
    let (_, body) = call(admin.get(url(&v, "/v2.6/agents/"))).await;
    assert_eq!(body["results"], json!({"uuids": []}));
    v.shutdown().await;
}
