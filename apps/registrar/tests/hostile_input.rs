//! Input the registrar must refuse with a 400 and a reason before anything reaches the
//! database (no 500s from column constraints), ids in paths percent-decoded as upstream
//! decodes them, and bodies that are not declared as JSON refused as upstream does.

mod common;

use common::env::*;
use common::*;
use serde_json::json;

#[tokio::test]
async fn fields_the_database_would_refuse_are_400_with_a_reason() {
    let env = env(false).await;
    let (ek, ak) = (ecc_ek(), ecc_ak());
    let with = |field: &str, value: serde_json::Value| {
        let mut body = register_body(&ek, &ak, None);
        body[field] = value;
        body
    };
    let cases = [
        ("port 0", "agent-a", with("port", json!(0)), "port"),
        (
            "ip of 256 chars",
            "agent-a",
            with("ip", json!("1".repeat(256))),
            "ip",
        ),
        (
            "ip with a space",
            "agent-a",
            with("ip", json!("10.0.0.1 x")),
            "ip",
        ),
        ("empty ip", "agent-a", with("ip", json!("")), "ip"),
    ];
    for (what, id, body, needle) in cases {
        let (status, resp) = post_register(&env, id, &body).await;
        assert_eq!(status, 400, "{what}: {resp}");
        let msg = resp["status"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{what}: {msg}");
    }
    // An id with whitespace, from the body (the path cannot carry a raw space).
    for id in ["agent a", "agent\t", " agent"] {
        let mut body = register_body(&ek, &ak, None);
        body["agent_id"] = json!(id);
        let (status, resp) = json_of(
            http_client()
                .post(http_url(&env.reg, "/v2.6/agents"))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{id:?}: {resp}");
        assert!(
            resp["status"].as_str().unwrap().contains("agent id"),
            "{resp}"
        );
    }
    assert!(stored_ids(env.state.path()).await.is_empty());
    assert_alive(&env).await;
    env.reg.shutdown().await;
}

#[tokio::test]
async fn path_ids_are_percent_decoded() {
    let env = env(false).await;
    let (ek, ak) = (ecc_ek(), ecc_ak());
    let (status, resp) = post_register(&env, "%41BC", &register_body(&ek, &ak, None)).await;
    assert_eq!(status, 200, "{resp}");
    let (status, resp) = post_register(
        &env,
        "%C3%A4gent2",
        &register_body(&ecc_ek(), &ecc_ak(), None),
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        stored_ids(env.state.path()).await,
        vec!["ABC".to_string(), "ägent2".to_string()]
    );
    // The same record through either spelling, over the admin port.
    let admin = https_client(&env.reg.tls_dir, true);
    for path in ["/v2.6/agents/%C3%A4gent2", "/v2.6/agents/ägent2"] {
        let (status, resp) =
            json_of(admin.get(https_url(&env.reg, path)).send().await.unwrap()).await;
        // Registered but not activated: found, not shown.
        assert_eq!(status, 404, "{path}: {resp}");
        assert_eq!(
            resp["status"],
            "Agent with ID 'ägent2' has not been activated"
        );
    }
    // A malformed escape or an id outside the rule is a 400, nothing stored.
    for id in ["%zz", "%C3", "a%20b", "a%2Fb"] {
        let (status, resp) =
            post_register(&env, id, &register_body(&ecc_ek(), &ecc_ak(), None)).await;
        assert_eq!(status, 400, "{id}: {resp}");
    }
    assert_eq!(stored_ids(env.state.path()).await.len(), 2);
    env.reg.shutdown().await;
}

#[tokio::test]
async fn registration_and_activation_must_be_declared_json() {
    let env = env(false).await;
    let body = register_body(&ecc_ek(), &ecc_ak(), None).to_string();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut req = http_client()
            .post(http_url(&env.reg, "/v2.6/agents/agent-ct"))
            .body(body.clone());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let (status, resp) = json_of(req.send().await.unwrap()).await;
        assert_eq!(status, 400, "{content_type:?}: {resp}");
        assert!(
            resp["status"].as_str().unwrap().contains("Content-Type"),
            "{resp}"
        );
    }
    assert!(stored_ids(env.state.path()).await.is_empty());
    let (status, _) =
        post_register(&env, "agent-ct", &register_body(&ecc_ek(), &ecc_ak(), None)).await;
    assert_eq!(status, 200);
    let (status, resp) = json_of(
        http_client()
            .put(http_url(&env.reg, "/v2.6/agents/agent-ct"))
            .body(json!({"auth_tag": "00"}).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{resp}");
    assert!(
        resp["status"].as_str().unwrap().contains("Content-Type"),
        "{resp}"
    );
    // The undeclared activation did not count as a wrong tag: the record is still there.
    assert_eq!(
        stored_ids(env.state.path()).await,
        vec!["agent-ct".to_string()]
    );
    env.reg.shutdown().await;
}
