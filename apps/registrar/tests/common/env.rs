//! A registrar with a vendor CA store in a tempdir, and the helpers the behaviour tests
//! drive it with: register over plain HTTP, read the stored records directly.

use std::path::Path;

use keylime_store::{DatabaseUrl, Store, StoreOptions};

use super::*;

/// The pending activation key as stored (the test plays the agent's TPM).
pub async fn stored_key(state: &Path, agent_id: &str) -> Option<String> {
    let store = Store::connect(
        &DatabaseUrl::Sqlite(state.join("reg_data.sqlite")),
        &StoreOptions::default(),
    )
    .await
    .expect("open store");
    let agent = store.registrar().get(agent_id).await.expect("get");
    store.close().await;
    agent.and_then(|a| a.activation_key)
}

pub async fn stored_ids(state: &Path) -> Vec<String> {
    let store = Store::connect(
        &DatabaseUrl::Sqlite(state.join("reg_data.sqlite")),
        &StoreOptions::default(),
    )
    .await
    .expect("open store");
    let ids = store.registrar().list_ids().await.expect("list");
    store.close().await;
    ids
}

pub struct Env {
    pub state: tempfile::TempDir,
    pub ca: VendorCa,
    pub reg: keylime_registrar::RunningRegistrar,
}

pub async fn env(require_ek_cert: bool) -> Env {
    let state = tempfile::tempdir().unwrap();
    let ca = VendorCa::new("Test TPM Vendor Root");
    let store_dir = state.path().join("tpm_cert_store");
    ca.write_store(&store_dir);
    let reg = start(settings(state.path(), Some(&store_dir), require_ek_cert)).await;
    Env { state, ca, reg }
}

pub async fn post_register(
    env: &Env,
    id: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let resp = http_client()
        .post(http_url(&env.reg, &format!("/v2.6/agents/{id}")))
        .json(body)
        .send()
        .await
        .expect("register request");
    json_of(resp).await
}

pub async fn assert_alive(env: &Env) {
    let (status, body) = json_of(
        http_client()
            .get(http_url(&env.reg, "/version"))
            .send()
            .await
            .expect("version"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["results"]["current_version"], "2.6");
}

/// The activation key of the re-registration held for an active agent.
pub async fn held_key(state: &Path, agent_id: &str) -> Option<String> {
    let store = Store::connect(
        &DatabaseUrl::Sqlite(state.join("reg_data.sqlite")),
        &StoreOptions::default(),
    )
    .await
    .expect("open store");
    let key = store
        .registrar()
        .held_key(agent_id)
        .await
        .expect("held key");
    store.close().await;
    key
}

/// `PUT /v2.6/agents/{id}` with `auth_tag`.
pub async fn put_activate(env: &Env, id: &str, auth_tag: &str) -> (u16, serde_json::Value) {
    let resp = http_client()
        .put(http_url(&env.reg, &format!("/v2.6/agents/{id}")))
        .json(&serde_json::json!({ "auth_tag": auth_tag }))
        .send()
        .await
        .expect("activate request");
    json_of(resp).await
}

/// `GET /v2.6/agents/{id}` over the admin port.
pub async fn admin_show(env: &Env, id: &str) -> (u16, serde_json::Value) {
    let admin = https_client(&env.reg.tls_dir, true);
    let resp = admin
        .get(https_url(&env.reg, &format!("/v2.6/agents/{id}")))
        .send()
        .await
        .expect("show request");
    json_of(resp).await
}
