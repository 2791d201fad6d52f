//! Re-registration of an ACTIVE agent: replaying its public EK/AK (anyone can, over plain
//! HTTP, without its TPM) must neither deactivate it nor, with a wrong tag, delete it; the
//! agent's own restart (same keys, correct activation) still goes through and applies its
//! new contact details; different keys are still refused.

mod common;

use common::env::*;
use common::*;
use keylime_api::activation_auth_tag_with_key;

const ID: &str = "agent-active";

/// Registers and activates `ID` with `body`; returns the active record as shown.
async fn register_active(env: &Env, body: &serde_json::Value) -> serde_json::Value {
    let (status, resp) = post_register(env, ID, body).await;
    assert_eq!(status, 200, "{resp}");
    let key = stored_key(env.state.path(), ID).await.expect("pending key");
    let (status, resp) = put_activate(env, ID, &activation_auth_tag_with_key(&key, ID)).await;
    assert_eq!(status, 200, "{resp}");
    let (status, shown) = admin_show(env, ID).await;
    assert_eq!(status, 200, "{shown}");
    shown["results"].clone()
}

#[tokio::test]
async fn replayed_public_keys_neither_deactivate_nor_delete_an_active_agent() {
    let env = env(false).await;
    let (ek, ak) = (ecc_ek(), ecc_ak());
    let body = register_body(&ek, &ak, None);
    let active = register_active(&env, &body).await;

    // The attacker re-posts the public keys with its own address: a challenge is issued,
    // the agent stays active and shown as it was.
    let mut replay = body.clone();
    replay["ip"] = serde_json::json!("203.0.113.66");
    replay["port"] = serde_json::json!(6666);
    let (status, resp) = post_register(&env, ID, &replay).await;
    assert_eq!(status, 200, "{resp}");
    assert!(held_key(env.state.path(), ID).await.is_some());
    let (status, shown) = admin_show(&env, ID).await;
    assert_eq!(status, 200, "still active: {shown}");
    assert_eq!(shown["results"], active);

    // It cannot answer the challenge: a wrong tag discards the challenge only.
    let (status, resp) = put_activate(&env, ID, &"00".repeat(48)).await;
    assert_eq!(status, 400, "{resp}");
    let reason = resp["status"].as_str().unwrap();
    assert!(
        reason.contains("active registration is unchanged"),
        "{reason}"
    );
    assert_eq!(stored_ids(env.state.path()).await, vec![ID.to_string()]);
    assert_eq!(held_key(env.state.path(), ID).await, None);
    let (status, shown) = admin_show(&env, ID).await;
    assert_eq!(status, 200, "not deleted: {shown}");
    assert_eq!(shown["results"], active);
    env.reg.shutdown().await;
}

#[tokio::test]
async fn agent_restart_with_same_keys_still_reregisters() {
    let env = env(false).await;
    let (ek, ak) = (ecc_ek(), ecc_ak());
    let body = register_body(&ek, &ak, None);
    let active = register_active(&env, &body).await;
    assert_eq!(active["regcount"], 1);

    let mut restarted = body.clone();
    restarted["ip"] = serde_json::json!("192.0.2.10");
    restarted["port"] = serde_json::json!(9443);
    let (status, resp) = post_register(&env, ID, &restarted).await;
    assert_eq!(status, 200, "{resp}");
    let key = held_key(env.state.path(), ID)
        .await
        .expect("held challenge");
    let (status, resp) = put_activate(&env, ID, &activation_auth_tag_with_key(&key, ID)).await;
    assert_eq!(status, 200, "{resp}");
    let (status, shown) = admin_show(&env, ID).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["results"]["ip"], "192.0.2.10");
    assert_eq!(shown["results"]["port"], 9443);
    assert_eq!(shown["results"]["regcount"], 2);
    // The challenge was used up.
    let (status, _) = put_activate(&env, ID, &activation_auth_tag_with_key(&key, ID)).await;
    assert_eq!(status, 409);

    // Different keys for the active agent: refused, record unchanged.
    let (status, resp) = post_register(&env, ID, &register_body(&ek, &ecc_ak(), None)).await;
    assert_eq!(status, 403, "{resp}");
    let (status, again) = admin_show(&env, ID).await;
    assert_eq!(status, 200);
    assert_eq!(again, shown);
    assert_eq!(held_key(env.state.path(), ID).await, None);
    env.reg.shutdown().await;
}
