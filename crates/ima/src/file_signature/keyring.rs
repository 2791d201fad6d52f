//! The runtime policy's `verification-keys`: a JSON text (possibly JSON-encoded twice, as
//! upstream's database stores it) `{"meta": {"version": N}?, "keyids": [int…],
//! "pubkeys": ["<base64 DER SubjectPublicKeyInfo>"…]}` (upstream `IMA_KEYRING_JSON_SCHEMA`).
//! `keyids[i]` names `pubkeys[i]`; a missing or zero id is derived from the key.

use base64::Engine as _;
use serde_json::Value;

use super::keys::PublicKey;

/// Why `verification-keys` was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Schema(String),
    #[error("pubkeys[{index}] is not base64: {problem}")]
    Base64 { index: usize, problem: String },
}

fn schema(msg: impl Into<String>) -> KeyringError {
    KeyringError::Schema(msg.into())
}

/// A key of the keyring that could not be used (upstream logs and skips these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    pub index: usize,
    pub reason: String,
}

/// Parses `verification-keys`. Keys that decode but cannot be loaded are returned in the
/// second list instead of failing the whole keyring, as upstream does.
pub fn parse_verification_keys(
    text: &str,
) -> Result<(Vec<PublicKey>, Vec<SkippedKey>), KeyringError> {
    if text.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut v: Value = serde_json::from_str(text).map_err(|e| KeyringError::Json(e.to_string()))?;
    if let Value::String(inner) = &v {
        v = serde_json::from_str(inner).map_err(|e| KeyringError::Json(e.to_string()))?;
    }
    let Value::Object(obj) = &v else {
        return Err(schema("is not a JSON object"));
    };
    if let Some(meta) = obj.get("meta") {
        let version = meta.as_object().and_then(|m| m.get("version"));
        match version.and_then(Value::as_i64) {
            Some(n) if n >= 1 => {}
            _ => return Err(schema("meta.version must be an integer of at least 1")),
        }
    }
    let keyids = obj
        .get("keyids")
        .and_then(Value::as_array)
        .ok_or_else(|| schema("keyids must be an array of integers"))?;
    if keyids.iter().any(|k| !(k.is_i64() || k.is_u64())) {
        return Err(schema("keyids must be an array of integers"));
    }
    let pubkeys = obj
        .get("pubkeys")
        .and_then(Value::as_array)
        .ok_or_else(|| schema("pubkeys must be an array of strings"))?;
    let mut keys = Vec::with_capacity(pubkeys.len());
    let mut skipped = Vec::new();
    for (index, p) in pubkeys.iter().enumerate() {
        let b64 = p
            .as_str()
            .ok_or_else(|| schema("pubkeys must be an array of strings"))?;
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| KeyringError::Base64 {
                index,
                problem: e.to_string(),
            })?;
        let keyid = match keyids.get(index) {
            None => Some(0),
            Some(k) => k.as_u64().and_then(|k| u32::try_from(k).ok()),
        };
        let Some(keyid) = keyid else {
            skipped.push(SkippedKey {
                index,
                reason: format!("keyid {} is not a 32-bit key id", keyids[index]),
            });
            continue;
        };
        match PublicKey::from_spki_der_with_keyid(&der, keyid) {
            Ok(k) => keys.push(k),
            Err(e) => {
                skipped.push(SkippedKey {
                    index,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok((keys, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1cD7bW5tX5qIVgWskS5tzY+XpqWzcW6HFq5npj8dHFIWsAJJCUdoSU631hkyY8HP/RfXDPq/J4IeKvx35EVXj49t1Z1FTJBgUlEbkKvqm0rY6jo7PnJ6BsDRrauXtiEXVKNXcWXDk8ES+9v9Cz26BJYAr+5Xgm2aEyAbj8GhicxUZfsjDm8eJ7ZnQKuhF7jejG5dYAYxnBVu99bQJHI5Fsu3dAjGbys9v7ToNbonS+1bJXdHyEE0swhxBOPvvV6vx5CzRNw1Sou3rT19T4j8wpsFOyYXVcbbRVBAmBE2Qy2UHvojFqaJN/A9lztllyER1S5heGG6CxK3GoR6pkOXAQIDAQAB";

    #[test]
    fn keyids_pair_with_keys_and_double_encoding_is_accepted() {
        let text = format!(r#"{{"keyids": [5], "pubkeys": ["{RSA}", "{RSA}"]}}"#);
        let (keys, skipped) = parse_verification_keys(&text).unwrap();
        assert!(skipped.is_empty());
        assert_eq!(keys[0].keyid(), 5);
        assert_eq!(keys[1].keyid(), 4081397027);
        let twice = serde_json::to_string(&text).unwrap();
        assert_eq!(parse_verification_keys(&twice).unwrap().0.len(), 2);
        assert!(parse_verification_keys("").unwrap().0.is_empty());
    }

    #[test]
    fn schema_violations_and_bad_keys() {
        for bad in [
            "[]",
            r#"{"pubkeys": []}"#,
            r#"{"keyids": []}"#,
            r#"{"keyids": ["1"], "pubkeys": []}"#,
            r#"{"keyids": [], "pubkeys": [1]}"#,
            r#"{"meta": {}, "keyids": [], "pubkeys": []}"#,
            r#"{"meta": {"version": 0}, "keyids": [], "pubkeys": []}"#,
        ] {
            assert!(
                matches!(parse_verification_keys(bad), Err(KeyringError::Schema(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_verification_keys("{"),
            Err(KeyringError::Json(_))
        ));
        assert!(matches!(
            parse_verification_keys(r#"{"keyids": [], "pubkeys": ["!!"]}"#),
            Err(KeyringError::Base64 { index: 0, .. })
        ));
        let (keys, skipped) = parse_verification_keys(&format!(
            r#"{{"keyids": [1, -1, 4294967296], "pubkeys": ["AAAA", "{RSA}", "{RSA}", "{RSA}"]}}"#
        ))
        .unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].keyid(), 4081397027);
        assert_eq!(
            skipped.iter().map(|s| s.index).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
    }
}
