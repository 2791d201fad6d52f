//! Behaviour of the registrar through its public API: an in-process service on loopback
//! port 0 with a tempdir state directory and SQLite, driven over real HTTP and mTLS.

mod common;

use common::env::*;
use common::*;
use keylime_api::activation_auth_tag_with_key;
use serde_json::json;

#[tokio::test]
async fn version_on_both_listeners() {
    let env = env(false).await;
    assert_alive(&env).await;
    let resp = https_client(&env.reg.tls_dir, false)
        .get(https_url(&env.reg, "/version"))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"code":200,"status":"Success","results":{"current_version":"2.6",
            "supported_versions":["1.0","2.0","2.1","2.2","2.3","2.4","2.5","2.6","3.0"]}})
    );
    env.reg.shutdown().await;
}

async fn happy_path(ek: SoftKey, ak: SoftKey, with_cert: bool) {
    let env = env(with_cert).await;
    let id = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000";
    let cert = with_cert.then(|| env.ca.issue_ek_cert(&ek.spki));
    let (status, body) = post_register(&env, id, &register_body(&ek, &ak, cert.as_deref())).await;
    assert_eq!(status, 200, "{body}");
    let (cred, secret) = split_blob(body["results"]["blob"].as_str().unwrap());
    assert!(!cred.is_empty() && !secret.is_empty());

    // Not yet active: show answers 404 "has not been activated".
    let admin = https_client(&env.reg.tls_dir, true);
    let (status, body) = json_of(
        admin
            .get(https_url(&env.reg, &format!("/v2.6/agents/{id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        body["status"],
        format!("Agent with ID '{id}' has not been activated")
    );

    let key = stored_key(env.state.path(), id).await.expect("pending key");
    assert_eq!(key.len(), 44, "b64 of 32 chars");
    let tag = activation_auth_tag_with_key(&key, id);
    let (status, body) = json_of(
        http_client()
            .put(http_url(&env.reg, &format!("/v2.6/agents/{id}")))
            .json(&json!({ "auth_tag": tag }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"code":200,"status":"Success","results":{}}));

    // Replay of the same tag: the challenge was consumed.
    let (status, body) = json_of(
        http_client()
            .put(http_url(&env.reg, &format!("/v2.6/agents/{id}/activate")))
            .json(&json!({ "auth_tag": tag }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["status"]
            .as_str()
            .unwrap()
            .contains("no pending activation")
    );

    // Show and list over mTLS.
    let (status, body) = json_of(
        admin
            .get(https_url(&env.reg, &format!("/v2.6/agents/{id}/")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let r = &body["results"];
    assert_eq!(r["agent_id"], id);
    assert_eq!(r["ek_tpm"], ek.b64());
    assert_eq!(r["aik_tpm"], ak.b64());
    assert_eq!(r["ip"], "127.0.0.1");
    assert_eq!(r["port"], 9002);
    assert_eq!(r["mtls_cert"], "disabled");
    assert_eq!(r["regcount"], 1);
    match &cert {
        Some(der) => assert_eq!(r["ekcert"], base64_of(der)),
        None => assert!(r["ekcert"].is_null()),
    }
    let (status, body) = json_of(
        admin
            .get(https_url(&env.reg, "/v2/agents"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["results"], json!({"uuids": [id]}));

    // Delete, then it is gone.
    let (status, _) = json_of(
        admin
            .delete(https_url(&env.reg, &format!("/v2.6/agents/{id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = json_of(
        admin
            .get(https_url(&env.reg, &format!("/v2.6/agents/{id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["status"], format!("Agent with ID '{id}' not found"));
    assert!(stored_ids(env.state.path()).await.is_empty());
    env.reg.shutdown().await;
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn rsa_ek_with_certificate_full_cycle() {
    happy_path(rsa_ek(), rsa_ak(), true).await;
}

#[tokio::test]
async fn ecc_ek_with_certificate_full_cycle() {
    happy_path(ecc_ek(), ecc_ak(), true).await;
}

#[tokio::test]
async fn rsa_ek_without_certificate_full_cycle() {
    happy_path(rsa_ek(), ecc_ak(), false).await;
}

#[tokio::test]
async fn ecc_ek_without_certificate_full_cycle() {
    happy_path(ecc_ek(), rsa_ak(), false).await;
}

#[tokio::test]
async fn register_with_body_agent_id_and_string_port() {
    let env = env(false).await;
    let mut body = register_body(&ecc_ek(), &ecc_ak(), None);
    body["agent_id"] = json!("from-body");
    body["port"] = json!("9100");
    let resp = http_client()
        .post(http_url(&env.reg, "/v2.3/agents/"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let (status, b) = json_of(resp).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(
        stored_ids(env.state.path()).await,
        vec!["from-body".to_string()]
    );
    env.reg.shutdown().await;
}

/// Every rejected registration: status, a reason naming the problem, nothing stored,
/// service still answering.
#[tokio::test]
async fn bad_registrations_are_rejected_without_side_effects() {
    let env = env(true).await;
    let ek = ecc_ek();
    let ak = ecc_ak();
    let good_cert = env.ca.issue_ek_cert(&ek.spki);
    let other = ecc_ek();
    let wrong_key_cert = env.ca.issue_ek_cert(&other.spki);
    let foreign_ca = VendorCa::new("Unknown Vendor");
    let untrusted_cert = foreign_ca.issue_ek_cert(&ek.spki);

    let mut truncated = ek.tpm2b.clone();
    truncated.truncate(truncated.len() - 10);
    let mut oversized = ek.tpm2b.clone();
    oversized.extend_from_slice(&[0u8; 16]);
    let b64 = |b: &[u8]| base64_of(b);

    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "ekcert key differs from EK",
            register_body(&ek, &ak, Some(&wrong_key_cert)),
            "same public key",
        ),
        (
            "ekcert not chaining",
            register_body(&ek, &ak, Some(&untrusted_cert)),
            "trust store",
        ),
        (
            "no ekcert but required",
            register_body(&ek, &ak, None),
            "require_ek_cert",
        ),
        (
            "wrong base64",
            json!({"ek_tpm": "!!!notb64!!!", "aik_tpm": ak.b64(), "ekcert": pem_of(&good_cert)}),
            "ek_tpm",
        ),
        (
            "truncated TPM2B_PUBLIC",
            json!({"ek_tpm": b64(&truncated), "aik_tpm": ak.b64(), "ekcert": pem_of(&good_cert)}),
            "TPM2B_PUBLIC",
        ),
        (
            "oversized TPM2B_PUBLIC",
            json!({"ek_tpm": b64(&oversized), "aik_tpm": ak.b64(), "ekcert": pem_of(&good_cert)}),
            "TPM2B_PUBLIC",
        ),
        (
            "missing aik_tpm",
            json!({"ek_tpm": ek.b64(), "ekcert": pem_of(&good_cert)}),
            "aik_tpm",
        ),
        (
            "AK is a decryption key",
            register_body(&ek, &rsa_ak_with_attrs(0x0003_0072), Some(&good_cert)),
            "restricted signing",
        ),
        (
            "EK passed as AK",
            register_body(&ek, &ek, Some(&good_cert)),
            "restricted signing",
        ),
        (
            "ekcert garbage",
            json!({"ek_tpm": ek.b64(), "aik_tpm": ak.b64(), "ekcert": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
            "ekcert",
        ),
        (
            "port out of range",
            json!({"ek_tpm": ek.b64(), "aik_tpm": ak.b64(), "ekcert": pem_of(&good_cert), "port": 99999}),
            "port",
        ),
        ("not JSON", json!("just a string"), "JSON"),
    ];
    for (what, body, needle) in cases {
        let (status, resp) = post_register(&env, "agent-bad", &body).await;
        assert_eq!(status, 400, "{what}: {resp}");
        let msg = resp["status"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with("Could not register agent with invalid data"),
            "{what}: {msg}"
        );
        assert!(msg.contains(needle), "{what}: {msg:?} lacks {needle:?}");
        assert!(
            stored_ids(env.state.path()).await.is_empty(),
            "{what}: something stored"
        );
    }

    // Malformed JSON bytes.
    let resp = http_client()
        .post(http_url(&env.reg, "/v2.6/agents/agent-bad"))
        .header("content-type", "application/json")
        .body("{\"ek_tpm\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);

    // 10 MB body → 413, service survives.
    let huge = format!("{{\"ek_tpm\": \"{}\"}}", "A".repeat(10 * 1024 * 1024));
    match http_client()
        .post(http_url(&env.reg, "/v2.6/agents/agent-bad"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
    {
        Ok(resp) => {
            assert_eq!(resp.status().as_u16(), 413);
            let text = resp.text().await.unwrap_or_default();
            assert!(text.contains("limit"), "{text}");
        }
        // The server may close the connection before the client finished sending.
        Err(err) => assert!(err.is_request() || err.is_body(), "{err:?}"),
    }
    assert!(stored_ids(env.state.path()).await.is_empty());
    assert_alive(&env).await;

    // The good body still works afterwards.
    let (status, resp) = post_register(
        &env,
        "agent-good",
        &register_body(&ek, &ak, Some(&good_cert)),
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    env.reg.shutdown().await;
}

#[tokio::test]
async fn wrong_tag_deletes_the_record() {
    let env = env(false).await;
    let id = "agent-wrong-tag";
    let (status, _) = post_register(&env, id, &register_body(&ecc_ek(), &ecc_ak(), None)).await;
    assert_eq!(status, 200);
    let bad_tag = "00".repeat(48);
    let (status, body) = json_of(
        http_client()
            .put(http_url(&env.reg, &format!("/v2.6/agents/{id}")))
            .json(&json!({ "auth_tag": bad_tag }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["status"],
        format!(
            "Auth tag '{bad_tag}' for agent '{id}' does not match expected value. The agent has been deleted from the database and will need to be restarted to reattempt registration"
        )
    );
    assert!(stored_ids(env.state.path()).await.is_empty());

    // Unknown agent → 404; missing auth_tag → 400.
    let (status, body) = json_of(
        http_client()
            .put(http_url(&env.reg, &format!("/v2.6/agents/{id}")))
            .json(&json!({ "auth_tag": bad_tag }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["status"], format!("Agent with ID '{id}' not found"));
    let resp = http_client()
        .put(http_url(&env.reg, &format!("/v2.6/agents/{id}")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_alive(&env).await;
    env.reg.shutdown().await;
}

#[tokio::test]
async fn reregistration_with_different_ak_is_forbidden() {
    let env = env(false).await;
    let id = "agent-rereg";
    let ek = ecc_ek();
    let ak = ecc_ak();
    let (status, _) = post_register(&env, id, &register_body(&ek, &ak, None)).await;
    assert_eq!(status, 200);
    let key_before = stored_key(env.state.path(), id).await;

    let (status, body) = post_register(&env, id, &register_body(&ek, &ecc_ak(), None)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["status"],
        "Agent re-registration with different TPM identity is forbidden for security reasons"
    );
    // Stored record unchanged.
    assert_eq!(stored_key(env.state.path(), id).await, key_before);

    // Same identity again is allowed and issues a new challenge.
    let (status, _) = post_register(&env, id, &register_body(&ek, &ak, None)).await;
    assert_eq!(status, 200);
    assert_ne!(stored_key(env.state.path(), id).await, key_before);
    env.reg.shutdown().await;
}

#[tokio::test]
async fn admin_routes_need_https_and_a_client_certificate() {
    let env = env(false).await;
    // Plain HTTP → 400, empty body.
    for (method, path) in [
        ("GET", "/v2.6/agents"),
        ("GET", "/v2.6/agents/x"),
        ("DELETE", "/v2.6/agents/x"),
    ] {
        let resp = http_client()
            .request(method.parse().unwrap(), http_url(&env.reg, path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{method} {path}");
        assert!(resp.text().await.unwrap().is_empty());
    }
    // HTTPS without a client certificate → 403 JSON errors document.
    let anon = https_client(&env.reg.tls_dir, false);
    let (status, body) = json_of(
        anon.get(https_url(&env.reg, "/v2.6/agents"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"errors":[{"status":"403","title":"Forbidden",
            "detail":"Action list_agents requires admin authentication (mTLS certificate)"}]})
    );
    // Unknown routes and v3 → 404, never 500.
    for path in [
        "/v3.0/agents",
        "/v3/agents/x",
        "/v1.0/agents",
        "/v2.9/agents",
        "/nothing",
    ] {
        let resp = http_client()
            .get(http_url(&env.reg, path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{path}");
    }
    // X-Request-ID is echoed sanitised.
    let resp = http_client()
        .get(http_url(&env.reg, "/version"))
        .header("x-request-id", "ab-c!d")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abcd");
    env.reg.shutdown().await;
}

#[tokio::test]
async fn restart_keeps_data_and_ca() {
    let state = tempfile::tempdir().unwrap();
    let reg = start(settings(state.path(), None, false)).await;
    let (status, _) = json_of(
        http_client()
            .post(http_url(&reg, "/v2.6/agents/persisted"))
            .json(&register_body(&ecc_ek(), &ecc_ak(), None))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let tls_dir = reg.tls_dir.clone();
    let ca_before = std::fs::read(tls_dir.join("cacert.crt")).unwrap();
    reg.shutdown().await;

    let reg = start(settings(state.path(), None, false)).await;
    assert_eq!(reg.tls_dir, tls_dir);
    assert_eq!(
        std::fs::read(tls_dir.join("cacert.crt")).unwrap(),
        ca_before
    );
    // The old client certificate still grants admin access.
    let admin = https_client(&reg.tls_dir, true);
    let (status, body) = json_of(
        admin
            .get(https_url(&reg, "/v2.6/agents"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["results"]["uuids"], json!(["persisted"]));
    reg.shutdown().await;
}

/// A vendor CA dropped into `tpm_cert_store` while the registrar runs is trusted from the
/// next registration on, without a restart.
#[tokio::test]
async fn vendor_ca_added_at_run_time_is_picked_up() {
    let env = env(true).await;
    let ek = ecc_ek();
    let ak = ecc_ak();
    let new_vendor = VendorCa::new("Vendor Added Later");
    let cert = new_vendor.issue_ek_cert(&ek.spki);
    let body = register_body(&ek, &ak, Some(&cert));

    let (status, refused) = post_register(&env, "late-vendor", &body).await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["status"]
            .as_str()
            .unwrap_or("")
            .contains("trust store"),
        "{refused}"
    );
    assert!(stored_ids(env.state.path()).await.is_empty());

    let store_dir = env.state.path().join("tpm_cert_store");
    std::fs::write(store_dir.join("vendor-added-later.pem"), new_vendor.pem()).unwrap();
    let (status, accepted) = post_register(&env, "late-vendor", &body).await;
    assert_eq!(status, 200, "{accepted}");
    assert!(
        accepted["results"]["blob"]
            .as_str()
            .is_some_and(|b| !b.is_empty())
    );
}
