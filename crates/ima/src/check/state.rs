//! What the IMA check remembers about an agent between rounds (upstream's
//! `next_ima_ml_entry`, the PCR 10 value there, `quote_progress`, and the keys learned from
//! keyring measurements this boot). Serde, so the verifier persists it as it is.

use base64::Engine as _;
use keylime_tpm::HashAlg;
use serde::{Deserialize, Serialize};

/// Incremental IMA attestation state of one agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImaState {
    /// Absolute index of the first entry not yet covered by a quote (upstream
    /// `next_ima_ml_entry`): the entry to request next.
    pub next_entry: u64,
    /// Lowercase hex running PCR 10 after `next_entry` entries, in the quote's bank.
    pub pcr10: Option<String>,
    /// Bank of `pcr10` (`sha256`, …).
    pub bank: Option<String>,
    /// The agent's reported boot time; the check carries it through, the caller sets it.
    pub boottime: u64,
    /// The quote lagged the log in the last round (`lag > 0`).
    pub lagging: bool,
    /// By how many entries the quote lagged the log in the last round (upstream keeps the
    /// pair `(pcr_match_line, log_length)`; only their difference matters).
    pub lag: u64,
    /// Keys learned from keyring measurements (`ima-buf`) this boot, in learning order.
    pub learned_keys: Vec<LearnedKey>,
}

/// A key measured into a kernel keyring and accepted by the policy's `keyrings`; it verifies
/// file signatures for the rest of the boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnedKey {
    /// The keyring the key was measured into (`.ima`, …).
    pub keyring: String,
    /// The IMA key id signatures name.
    pub keyid: u32,
    /// Base64 DER SubjectPublicKeyInfo.
    pub pubkey: String,
}

impl LearnedKey {
    pub(crate) fn new(keyring: &str, key: &crate::file_signature::PublicKey) -> Self {
        LearnedKey {
            keyring: keyring.to_owned(),
            keyid: key.keyid(),
            pubkey: base64::engine::general_purpose::STANDARD.encode(key.spki_der()),
        }
    }

    /// Loads the key; `None` if the stored text is not a usable key.
    pub(crate) fn load(&self) -> Option<crate::file_signature::PublicKey> {
        let der = base64::engine::general_purpose::STANDARD
            .decode(&self.pubkey)
            .ok()?;
        crate::file_signature::PublicKey::from_spki_der_with_keyid(&der, self.keyid).ok()
    }
}

impl ImaState {
    /// True when a list starting at `first_entry` in `bank` continues this state: the agent
    /// answered the request for `next_entry` (≠ 0) and the stored value is of that bank.
    pub fn can_resume(&self, first_entry: u64, bank: HashAlg) -> bool {
        first_entry != 0
            && first_entry == self.next_entry
            && self.pcr10.is_some()
            && self.bank.as_deref() == Some(bank.name())
    }

    /// The learned keys in upstream's `learned_ima_keyrings` shape: keyring name → the
    /// keyring's JSON text `{"pubkeys": [...], "keyids": [...]}`.
    pub fn learned_keyrings_json(&self) -> serde_json::Value {
        let mut rings: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
        let mut grouped: Vec<(&str, Vec<&str>, Vec<u32>)> = Vec::new();
        for k in &self.learned_keys {
            match grouped.iter_mut().find(|(n, _, _)| *n == k.keyring) {
                Some((_, keys, ids)) => {
                    keys.push(&k.pubkey);
                    ids.push(k.keyid);
                }
                None => grouped.push((&k.keyring, vec![&k.pubkey], vec![k.keyid])),
            }
        }
        for (name, keys, ids) in grouped {
            let ring = serde_json::json!({"pubkeys": keys, "keyids": ids});
            rings.insert(name.to_owned(), serde_json::Value::String(ring.to_string()));
        }
        serde_json::Value::Object(rings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_rules_and_serde_defaults() {
        let s = ImaState {
            next_entry: 5,
            pcr10: Some("00".repeat(32)),
            bank: Some("sha256".into()),
            ..ImaState::default()
        };
        assert!(s.can_resume(5, HashAlg::Sha256));
        assert!(!s.can_resume(5, HashAlg::Sha1));
        assert!(!s.can_resume(4, HashAlg::Sha256));
        assert!(!s.can_resume(0, HashAlg::Sha256));
        assert!(!ImaState::default().can_resume(0, HashAlg::Sha256));
        let old: ImaState = serde_json::from_str(r#"{"next_entry": 3}"#).unwrap();
        assert_eq!(old.next_entry, 3);
        assert!(old.learned_keys.is_empty());
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<ImaState>(&text).unwrap(), s);
    }

    #[test]
    fn learned_keyrings_in_upstreams_shape() {
        let s = ImaState {
            learned_keys: vec![
                LearnedKey {
                    keyring: ".ima".into(),
                    keyid: 1,
                    pubkey: "AA==".into(),
                },
                LearnedKey {
                    keyring: ".ima".into(),
                    keyid: 2,
                    pubkey: "AQ==".into(),
                },
            ],
            ..ImaState::default()
        };
        let v = s.learned_keyrings_json();
        let ring: serde_json::Value = serde_json::from_str(v[".ima"].as_str().unwrap()).unwrap();
        assert_eq!(ring["keyids"], serde_json::json!([1, 2]));
        assert_eq!(ring["pubkeys"], serde_json::json!(["AA==", "AQ=="]));
    }
}
