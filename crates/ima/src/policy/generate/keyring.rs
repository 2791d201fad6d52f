//! The `verification-keys` a new policy carries: a JSON text `{"pubkeys": [b64 DER SPKI…],
//! "keyids": [int…]}` (upstream's `ImaKeyring` text) read from a base policy as leniently as
//! upstream's policy tool reads it, extended with key files, and written back. Key ids are
//! those of [`PublicKey`] (a certificate's Subject Key Identifier, else the kernel's keyidv2).

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::error::GenerateError;
use crate::file_signature::PublicKey;

/// An ordered set of IMA verification keys, one per key id.
#[derive(Debug, Default, Clone)]
pub struct ImaKeyring {
    keys: Vec<PublicKey>,
}

#[derive(Deserialize)]
struct KeyringJson {
    pubkeys: Vec<String>,
    #[serde(default)]
    keyids: Vec<u32>,
}

#[derive(Serialize)]
struct KeyringOut<'a> {
    pubkeys: Vec<String>,
    keyids: &'a [u32],
}

fn keyring_error(problem: impl Into<String>) -> GenerateError {
    GenerateError::VerificationKeys(problem.into())
}

impl ImaKeyring {
    /// Parses a policy's `verification-keys` text (possibly JSON-encoded twice, as upstream's
    /// database stores it).
    pub fn parse(text: &str) -> Result<ImaKeyring, GenerateError> {
        let not_json = |e: serde_json::Error| keyring_error(format!("not JSON: {e}"));
        let mut value: serde_json::Value = serde_json::from_str(text).map_err(not_json)?;
        if let serde_json::Value::String(inner) = &value {
            value = serde_json::from_str(inner).map_err(not_json)?;
        }
        let json: KeyringJson = serde_json::from_value(value)
            .map_err(|e| keyring_error(format!("not an IMA keyring: {e}")))?;
        let mut ring = ImaKeyring::default();
        for (i, b64) in json.pubkeys.iter().enumerate() {
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| keyring_error(format!("pubkeys[{i}] is not base64: {e}")))?;
            let keyid = json.keyids.get(i).copied().unwrap_or(0);
            let key = PublicKey::from_spki_der_with_keyid(&der, keyid)
                .map_err(|e| keyring_error(format!("pubkeys[{i}]: {e}")))?;
            ring.add(key);
        }
        Ok(ring)
    }

    /// Adds `key`, replacing a key with the same id.
    pub fn add(&mut self, key: PublicKey) {
        match self.keys.iter_mut().find(|k| k.keyid() == key.keyid()) {
            Some(slot) => *slot = key,
            None => self.keys.push(key),
        }
    }

    /// Adds the key of a certificate or public-key file (PEM or DER), named `source` in
    /// errors.
    pub fn add_key_file(&mut self, source: &str, bytes: &[u8]) -> Result<(), GenerateError> {
        let key = PublicKey::from_key_material(bytes).map_err(|error| GenerateError::KeyFile {
            source_name: source.to_owned(),
            error,
        })?;
        tracing::debug!(
            keyid = format_args!("{:08x}", key.keyid()),
            file = source,
            "IMA key added"
        );
        self.add(key);
        Ok(())
    }

    /// The key ids, in order.
    pub fn keyids(&self) -> Vec<u32> {
        self.keys.iter().map(PublicKey::keyid).collect()
    }

    /// The JSON text upstream writes.
    pub fn to_json(&self) -> Result<String, GenerateError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let keyids = self.keyids();
        let out = KeyringOut {
            pubkeys: self.keys.iter().map(|k| b64.encode(k.spki_der())).collect(),
            keyids: &keyids,
        };
        keylime_api::pyjson::try_dumps(&out)
            .map_err(|e| keyring_error(format!("cannot be written: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1cD7bW5tX5qIVgWskS5tzY+XpqWzcW6HFq5npj8dHFIWsAJJCUdoSU631hkyY8HP/RfXDPq/J4IeKvx35EVXj49t1Z1FTJBgUlEbkKvqm0rY6jo7PnJ6BsDRrauXtiEXVKNXcWXDk8ES+9v9Cz26BJYAr+5Xgm2aEyAbj8GhicxUZfsjDm8eJ7ZnQKuhF7jejG5dYAYxnBVu99bQJHI5Fsu3dAjGbys9v7ToNbonS+1bJXdHyEE0swhxBOPvvV6vx5CzRNw1Sou3rT19T4j8wpsFOyYXVcbbRVBAmBE2Qy2UHvojFqaJN/A9lztllyER1S5heGG6CxK3GoR6pkOXAQIDAQAB";

    #[test]
    fn garbage_is_refused() {
        assert!(ImaKeyring::parse("invalid").is_err());
        assert!(ImaKeyring::parse(r#"{"pubkeys": ["***"]}"#).is_err());
        assert!(ImaKeyring::parse(r#"{"pubkeys": ["AAAA"]}"#).is_err());
        let mut ring = ImaKeyring::default();
        let err = ring.add_key_file("x", b"not a key").unwrap_err();
        assert!(err.to_string().starts_with("x does not hold"), "{err}");
        assert!(
            ImaKeyring::parse(r#"{"pubkeys": []}"#)
                .unwrap()
                .keyids()
                .is_empty()
        );
    }

    #[test]
    fn keyids_are_kept_derived_and_written_back() {
        let text = format!(r#"{{"pubkeys": ["{RSA}", "{RSA}"], "keyids": [5]}}"#);
        let ring = ImaKeyring::parse(&serde_json::to_string(&text).unwrap()).unwrap();
        assert_eq!(ring.keyids(), vec![5, 4081397027]);
        assert_eq!(
            ring.to_json().unwrap(),
            format!(r#"{{"pubkeys": ["{RSA}", "{RSA}"], "keyids": [5, 4081397027]}}"#)
        );
    }
}
