//! Named runtime and measured-boot policies over real TLS (PROTOCOL.md §5.8): create, show
//! (`tmp_policy`, raw policy text), list, update, delete with upstream's codes; policies in
//! use by an agent kept (409); hostile bodies (not JSON, not base64, schema violations,
//! regex bombs, unsigned with signatures required, oversized) refused with nothing stored;
//! agents added with a policy by value or by name; a policy deleted and created again under
//! the same name is prepared again, never served from the cache.

mod common;

use base64::Engine as _;
use common::{TestAgent, call, client, start_verifier, start_verifier_with, url};
use serde_json::{Value, json};

fn policy_text(paths: &[(&str, &str)]) -> String {
    let digests: serde_json::Map<String, Value> = paths
        .iter()
        .map(|(p, d)| ((*p).to_string(), json!([d])))
        .collect();
    json!({
        "meta": {"version": 1, "generator": 3},
        "release": 0,
        "digests": digests,
        "excludes": ["/tmp/.*"],
        "keyrings": {},
        "ima": {"ignored_keyrings": [], "log_hash_alg": "sha1", "dm_policy": null},
        "ima-buf": {},
        "verification-keys": ""
    })
    .to_string()
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_and_mb_policies_crud_and_hostile_input() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_verifier(dir.path()).await;
    let admin = client(&v, true);
    let anon = client(&v, false);
    let p1 = policy_text(&[("/usr/bin/bash", &"ab".repeat(32))]);

    // Admin only.
    let (code, _) = call(anon.get(url(&v, "/v2.6/allowlists/"))).await;
    assert_eq!(code, 403);

    let (code, body) = call(
        admin
            .post(url(&v, "/v2.6/allowlists/p1"))
            .json(&json!({"runtime_policy": b64(&p1)})),
    )
    .await;
    assert_eq!(
        (code, body["status"].as_str()),
        (201, Some("Created")),
        "{body}"
    );
    let (code, _) = call(
        admin
            .post(url(&v, "/v2.6/allowlists/p1"))
            .json(&json!({"runtime_policy": b64(&p1)})),
    )
    .await;
    assert_eq!(code, 409);
    let (code, body) = call(admin.get(url(&v, "/v2.6/allowlists/p1"))).await;
    assert_eq!(code, 200);
    assert_eq!(body["results"]["name"], "p1");
    assert_eq!(body["results"]["tmp_policy"], Value::Null);
    assert_eq!(body["results"]["runtime_policy"], p1.as_str());
    let (_, body) = call(admin.get(url(&v, "/v2.6/allowlists/"))).await;
    assert_eq!(body["results"]["runtimepolicy names"], json!(["p1"]));

    // Update in place; updating a missing name is 404.
    let p2 = policy_text(&[("/usr/bin/zsh", &"cd".repeat(32))]);
    let (code, _) = call(
        admin
            .put(url(&v, "/v2.6/allowlists/p1"))
            .json(&json!({"runtime_policy": b64(&p2)})),
    )
    .await;
    assert_eq!(code, 201);
    let (_, body) = call(admin.get(url(&v, "/v2.6/allowlists/p1"))).await;
    assert_eq!(body["results"]["runtime_policy"], p2.as_str());
    let (code, _) = call(
        admin
            .put(url(&v, "/v2.6/allowlists/nope"))
            .json(&json!({"runtime_policy": b64(&p2)})),
    )
    .await;
    assert_eq!(code, 404);

    // Hostile bodies: 400 with a reason, nothing stored.
    let mut bomb: Value = serde_json::from_str(&p1).unwrap();
    bomb["excludes"] = json!(["(a{1000}){1000}"]);
    let mut bad_schema: Value = serde_json::from_str(&p1).unwrap();
    bad_schema["digests"] = json!({"/x": ["not-hex"]});
    let mut bad_regex: Value = serde_json::from_str(&p1).unwrap();
    bad_regex["excludes"] = json!(["(unclosed"]);
    for (what, body) in [
        ("not JSON", "{".to_string()),
        ("no policy", json!({}).to_string()),
        ("not base64", json!({"runtime_policy": "***"}).to_string()),
        (
            "not JSON inside",
            json!({"runtime_policy": b64("nope")}).to_string(),
        ),
        (
            "schema",
            json!({"runtime_policy": b64(&bad_schema.to_string())}).to_string(),
        ),
        (
            "bad regex",
            json!({"runtime_policy": b64(&bad_regex.to_string())}).to_string(),
        ),
        (
            "regex bomb",
            json!({"runtime_policy": b64(&bomb.to_string())}).to_string(),
        ),
    ] {
        let (code, resp) = call(
            admin
                .post(url(&v, "/v2.6/allowlists/bad"))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(code, 400, "{what}: {resp}");
        assert!(
            resp["status"].as_str().is_some_and(|s| !s.is_empty()),
            "{what}: {resp}"
        );
    }
    let (code, _) = call(admin.get(url(&v, "/v2.6/allowlists/bad"))).await;
    assert_eq!(code, 404);

    // Measured-boot policies: PUT on a missing name is 409 (upstream), null policies allowed.
    let refstate = json!({"has_secureboot": false, "scrtm_and_bios": [], "kernels": []});
    let (code, _) = call(
        admin
            .post(url(&v, "/v2.6/mbpolicies/m1"))
            .json(&json!({"mb_policy": refstate.to_string()})),
    )
    .await;
    assert_eq!(code, 201);
    let (code, _) = call(
        admin
            .put(url(&v, "/v2.6/mbpolicies/missing"))
            .json(&json!({"mb_policy": null})),
    )
    .await;
    assert_eq!(code, 409);
    let (code, _) = call(
        admin
            .post(url(&v, "/v2.6/mbpolicies/m2"))
            .json(&json!({"mb_policy": "{not json"})),
    )
    .await;
    assert_eq!(code, 400);
    let (_, body) = call(admin.get(url(&v, "/v2.6/mbpolicies/"))).await;
    assert_eq!(body["results"]["mbpolicy names"], json!(["m1"]));
    let (_, body) = call(admin.get(url(&v, "/v2.6/mbpolicies/m1"))).await;
    assert_eq!(body["results"]["mb_policy"], refstate.to_string());

    // An agent using p1 by name keeps it (409), an unknown name is 404 on add.
    let agent = TestAgent::start(&v.tls_dir.join("cacert.crt")).await;
    let mut add = agent.add_body();
    add["runtime_policy_name"] = json!("absent");
    let (code, _) = call(admin.post(url(&v, "/v2.6/agents/a1")).json(&add)).await;
    assert_eq!(code, 404);
    add["runtime_policy_name"] = json!("p1");
    let (code, body) = call(admin.post(url(&v, "/v2.6/agents/a1")).json(&add)).await;
    assert_eq!(code, 200, "{body}");
    let (_, st) = call(admin.get(url(&v, "/v2.6/agents/a1"))).await;
    assert_eq!(st["results"]["has_runtime_policy"], 1, "{st}");
    let (code, body) = call(admin.delete(url(&v, "/v2.6/allowlists/p1"))).await;
    assert_eq!(code, 409);
    assert!(
        body["status"]
            .as_str()
            .unwrap()
            .contains("in use by agent a1"),
        "{body}"
    );
    let (code, _) = call(admin.delete(url(&v, "/v2.6/mbpolicies/m1"))).await;
    assert_eq!(code, 204);
    let (code, _) = call(admin.delete(url(&v, "/v2.6/mbpolicies/m1"))).await;
    assert_eq!(code, 404);

    // A policy by value is stored under the agent id and removed with the agent.
    let mut add2 = agent.add_body();
    add2["runtime_policy"] = json!(b64(&p1));
    let (code, body) = call(admin.post(url(&v, "/v2.6/agents/a2")).json(&add2)).await;
    assert_eq!(code, 200, "{body}");
    let (code, _) = call(admin.get(url(&v, "/v2.6/allowlists/a2"))).await;
    assert_eq!(code, 200);
    // the service is still up and serving
    let (code, _) = call(anon.get(url(&v, "/version"))).await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_required_refuses_unsigned_policies() {
    let dir = tempfile::tempdir().unwrap();
    let v = start_verifier_with(dir.path(), |s| {
        s.policy.require_allow_list_signatures = true;
    })
    .await;
    let admin = client(&v, true);
    let p1 = policy_text(&[("/usr/bin/bash", &"ab".repeat(32))]);
    let (code, body) = call(
        admin
            .post(url(&v, "/v2.6/allowlists/p1"))
            .json(&json!({"runtime_policy": b64(&p1)})),
    )
    .await;
    assert_eq!(code, 401, "{body}");
    // Signed with a key, verified with it: accepted; verified with another key: 401.
    let (key_pem, pubkey) = p256_key_pem();
    let key = keylime_ima::policy::EcdsaSigningKey::from_pem(&key_pem).unwrap();
    let env = keylime_ima::policy::sign_ecdsa(
        p1.as_bytes(),
        keylime_ima::policy::KEYLIME_PAYLOAD_TYPE,
        &key,
    )
    .unwrap();
    let (code, body) = call(admin.post(url(&v, "/v2.6/allowlists/p1")).json(&json!({
        "runtime_policy": b64(&env.to_json()),
        "runtime_policy_key": b64(&pubkey),
    })))
    .await;
    assert_eq!(code, 201, "{body}");
    let (_, other) = p256_key_pem();
    let (code, body) = call(admin.post(url(&v, "/v2.6/allowlists/p2")).json(&json!({
        "runtime_policy": b64(&env.to_json()),
        "runtime_policy_key": b64(&other),
    })))
    .await;
    assert_eq!(code, 401, "{body}");
}

/// A fresh P-256 key: (private SEC1 PEM, public SPKI PEM).
fn p256_key_pem() -> (String, String) {
    use p256::pkcs8::EncodePublicKey as _;
    let secret = p256::SecretKey::random(&mut rand::thread_rng());
    let private = secret
        .to_sec1_pem(p256::pkcs8::LineEnding::LF)
        .unwrap()
        .to_string();
    let public = secret
        .public_key()
        .to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .unwrap();
    (private, public)
}

/// A policy deleted and created again under the same name (an agent deleted and added
/// again with a new policy by value, or a named policy through `/allowlists` and
/// `/mbpolicies`) is prepared again: the cache never serves the deleted version.
#[tokio::test]
async fn policy_deleted_and_created_again_is_never_served_from_the_cache() {
    use keylime_store::{DatabaseUrl, PolicyKind, Store, StoreOptions};
    use keylime_verifier::policy_cache::{PolicyCache, PolicySettings};
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::Sqlite(dir.path().join("cv_data.sqlite"));
    let store = Store::connect(&url, &StoreOptions::default())
        .await
        .unwrap();
    let cache = PolicyCache::new(store.clone(), PolicySettings::default());
    let repo = store.verifier();
    let (old, new) = (("/usr/bin/old", "ab"), ("/usr/bin/new", "cd"));
    for (name, first, second) in [
        ("by-name", old, new),
        ("by-name", new, old),
        ("agent-id", old, new),
    ] {
        let text = |(path, d): (&str, &str)| policy_text(&[(path, &d.repeat(32))]);
        assert!(
            repo.add_policy(PolicyKind::Runtime, name, Some(&text(first)), None)
                .await
                .unwrap()
        );
        let p = cache.runtime(name).await.unwrap();
        assert!(p.file_digests(first.0).is_some() && p.file_digests(second.0).is_none());
        repo.delete_policy(PolicyKind::Runtime, name).await.unwrap();
        assert!(
            repo.add_policy(PolicyKind::Runtime, name, Some(&text(second)), None)
                .await
                .unwrap()
        );
        let p = cache.runtime(name).await.unwrap();
        assert!(
            p.file_digests(second.0).is_some() && p.file_digests(first.0).is_none(),
            "{name}: the re-created policy is used"
        );
        repo.delete_policy(PolicyKind::Runtime, name).await.unwrap();
    }
    // Measured boot: a reference state deleted and created again as "nothing to evaluate".
    let kind = PolicyKind::MeasuredBoot;
    assert!(
        repo.add_policy(kind, "mb", Some("{\"a\": 1}"), None)
            .await
            .unwrap()
    );
    assert!(!cache.mb("mb").await.unwrap().is_empty());
    repo.delete_policy(kind, "mb").await.unwrap();
    assert!(repo.add_policy(kind, "mb", None, None).await.unwrap());
    assert!(
        cache.mb("mb").await.unwrap().is_empty(),
        "the re-created reference state is used"
    );
    store.close().await;
}
