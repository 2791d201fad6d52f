//! The bootstrap key K, its split into the shares U (tenant) and V (verifier), and the
//! HMAC-SHA384 tag that lets the agent recognise the right (U, V) pair.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha384;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::PayloadError;

/// Length in bytes of K, U and V.
pub const KEY_LEN: usize = 32;

/// The bootstrap key K (AES-256 key of the payload, HMAC key of the key checks).
///
/// `Debug` never prints the key bytes; the bytes are wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapKey([u8; KEY_LEN]);

impl BootstrapKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Reads a key from a slice, checking its length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, PayloadError> {
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| PayloadError::KeyLength {
            what: "bootstrap key",
            expected: KEY_LEN,
            actual: bytes.len(),
        })?;
        Ok(Self(arr))
    }

    /// A fresh random key from the OS random generator.
    pub fn generate() -> Self {
        let mut k = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Self(k)
    }

    /// The raw key bytes (for callers that must persist or transmit K).
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for BootstrapKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BootstrapKey(<redacted>)")
    }
}

impl Drop for BootstrapKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Creates a fresh K and splits it: returns `(K, U, V)` with `U = K ⊕ V`, V random.
/// The tenant sends U to the agent, the verifier sends V.
pub fn split_key() -> (BootstrapKey, [u8; KEY_LEN], [u8; KEY_LEN]) {
    let k = BootstrapKey::generate();
    let mut v = [0u8; KEY_LEN];
    rand::rngs::OsRng.fill_bytes(&mut v);
    let u = xor(&k.0, &v);
    (k, u, v)
}

/// Recombines the shares: K = U ⊕ V. Both shares must be exactly [`KEY_LEN`] bytes.
pub fn combine(u: &[u8], v: &[u8]) -> Result<BootstrapKey, PayloadError> {
    let u: &[u8; KEY_LEN] = u.try_into().map_err(|_| PayloadError::KeyLength {
        what: "key share U",
        expected: KEY_LEN,
        actual: u.len(),
    })?;
    let v: &[u8; KEY_LEN] = v.try_into().map_err(|_| PayloadError::KeyLength {
        what: "key share V",
        expected: KEY_LEN,
        actual: v.len(),
    })?;
    Ok(BootstrapKey(xor(u, v)))
}

fn xor(a: &[u8; KEY_LEN], b: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x ^ y;
    }
    out
}

/// Lowercase hex of HMAC-SHA384(K, data): the `auth_tag` over the agent id that the
/// tenant sends with U, and the `hmac` over the challenge of `/keys/verify`.
pub fn key_auth_tag(k: &BootstrapKey, data: &str) -> String {
    hex::encode(hmac_sha384(k, data))
}

/// Checks a hex tag (any case) against HMAC-SHA384(K, data) in constant time.
pub fn verify_auth_tag(k: &BootstrapKey, data: &str, tag_hex: &str) -> bool {
    let Ok(tag) = hex::decode(tag_hex.trim()) else {
        return false;
    };
    let expected = hmac_sha384(k, data);
    tag.len() == expected.len() && bool::from(expected.as_slice().ct_eq(&tag))
}

fn hmac_sha384(k: &BootstrapKey, data: &str) -> Vec<u8> {
    // HMAC accepts keys of any length; 32 bytes can never be rejected.
    let mut mac = match <Hmac<Sha384> as Mac>::new_from_slice(&k.0) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts every key length"),
    };
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting_key() -> BootstrapKey {
        let mut k = [0u8; KEY_LEN];
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8;
        }
        BootstrapKey::from_bytes(k)
    }

    #[test]
    fn auth_tag_known_answer() {
        // Computed independently with Python's hmac module (K = bytes(range(32))).
        assert_eq!(
            key_auth_tag(&counting_key(), "D432FBB3-D2F1-4A97-9EF7-75BD81C00000"),
            "7591c3fbfeed2961e39b19fb6052a8ec9a0a0b5161ff5cb2b58c75bb0bab64a9\
             861e5c848affd9d843cc9a2d2809f0ee"
        );
    }

    #[test]
    fn split_then_combine_gives_k_back() {
        let (k, u, v) = split_key();
        assert_ne!(u, v);
        assert_eq!(combine(&u, &v).expect("combine"), k);
        assert_eq!(combine(&v, &u).expect("combine is symmetric"), k);
    }

    #[test]
    fn combine_checks_lengths() {
        let err = combine(&[0u8; 31], &[0u8; 32]).unwrap_err();
        assert!(
            err.to_string()
                .contains("key share U must be 32 bytes, got 31")
        );
        let err = combine(&[0u8; 32], &[]).unwrap_err();
        assert!(
            err.to_string()
                .contains("key share V must be 32 bytes, got 0")
        );
    }

    #[test]
    fn verify_auth_tag_accepts_right_and_rejects_wrong() {
        let k = counting_key();
        let tag = key_auth_tag(&k, "agent-1");
        assert!(verify_auth_tag(&k, "agent-1", &tag));
        assert!(verify_auth_tag(&k, "agent-1", &tag.to_uppercase()));
        assert!(!verify_auth_tag(&k, "agent-2", &tag));
        assert!(!verify_auth_tag(&BootstrapKey::generate(), "agent-1", &tag));
        assert!(!verify_auth_tag(&k, "agent-1", "zz"));
        assert!(!verify_auth_tag(&k, "agent-1", &tag[..10]));
    }

    #[test]
    fn debug_does_not_print_key() {
        let k = counting_key();
        let shown = format!("{k:?}");
        assert_eq!(shown, "BootstrapKey(<redacted>)");
    }
}
