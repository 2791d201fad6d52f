//! Key-share and payload delivery helpers shared by the pull-API tests.

use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylime_payload::{encrypt_payload, key_auth_tag, rsa_oaep_sha1_encrypt, split_key};
use serde_json::json;

use super::PullAgent;

/// A zip of `(name, content)` entries.
pub fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(*name, SimpleFileOptions::default()).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

pub fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The agent's payload public key (`/keys/pubkey`).
pub async fn pubkey(agent: &PullAgent) -> String {
    let (status, pk) = agent.get("/v2.6/keys/pubkey").await;
    assert_eq!(status, 200, "{pk}");
    pk["results"]["pubkey"].as_str().unwrap().to_string()
}

/// A fresh K and the `/keys/ukey` and `/keys/vkey` bodies carrying its shares for the
/// agent's key (U with `payload` if given).
pub async fn share_bodies(
    agent: &PullAgent,
    auth_id: &str,
    payload: Option<&[u8]>,
) -> (
    keylime_payload::BootstrapKey,
    serde_json::Value,
    serde_json::Value,
) {
    let pem = pubkey(agent).await;
    let (k, u, v) = split_key();
    let mut ukey = json!({
        "encrypted_key": STANDARD.encode(rsa_oaep_sha1_encrypt(&pem, &u).unwrap()),
        "auth_tag": key_auth_tag(&k, auth_id),
    });
    if let Some(p) = payload {
        ukey["payload"] = json!(encrypt_payload(&k, p));
    }
    let vkey = json!({"encrypted_key": STANDARD.encode(rsa_oaep_sha1_encrypt(&pem, &v).unwrap())});
    (k, ukey, vkey)
}

/// Sends U (with payload) and V for the agent's pubkey; returns K.
pub async fn deliver(
    agent: &PullAgent,
    auth_id: &str,
    payload: Option<&[u8]>,
) -> keylime_payload::BootstrapKey {
    let (k, ukey, vkey) = share_bodies(agent, auth_id, payload).await;
    let (status, body) = agent.post("/v2.6/keys/ukey", &ukey).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"], serde_json::Value::Null);
    let (status, body) = agent.get("/v2.6/keys/verify?challenge=abc").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (400, Some("Bootstrap key not yet available."))
    );
    let (status, body) = agent.post("/v2.6/keys/vkey", &vkey).await;
    assert_eq!(status, 200, "{body}");
    k
}
