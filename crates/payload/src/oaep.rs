//! RSA-OAEP with SHA-1 and MGF1-SHA-1, no label: how the tenant and the verifier wrap
//! the key shares U and V for the agent's payload key (PROTOCOL.md §4.6).

use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};

use crate::PayloadError;
use crate::keys::parse_rsa_public_key_pem;

/// Encrypts `data` for the holder of the RSA key in `pubkey_pem` (the agent's
/// `/keys/pubkey` PEM, or a certificate).
pub fn rsa_oaep_sha1_encrypt(pubkey_pem: &str, data: &[u8]) -> Result<Vec<u8>, PayloadError> {
    let key = parse_rsa_public_key_pem(pubkey_pem)?;
    rsa_oaep_sha1_encrypt_key(&key, data)
}

/// As [`rsa_oaep_sha1_encrypt`] with an already parsed key.
pub fn rsa_oaep_sha1_encrypt_key(key: &RsaPublicKey, data: &[u8]) -> Result<Vec<u8>, PayloadError> {
    key.encrypt(&mut rand::rngs::OsRng, Oaep::new::<sha1::Sha1>(), data)
        .map_err(|e| PayloadError::OaepEncrypt(e.to_string()))
}

/// Decrypts an RSA-OAEP-SHA1 ciphertext with the agent's payload key.
pub fn rsa_oaep_sha1_decrypt(key: &RsaPrivateKey, data: &[u8]) -> Result<Vec<u8>, PayloadError> {
    key.decrypt(Oaep::new::<sha1::Sha1>(), data)
        .map_err(|_| PayloadError::OaepDecrypt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};

    fn key() -> RsaPrivateKey {
        RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("keygen")
    }

    #[test]
    fn round_trip_through_pem() {
        let sk = key();
        let pem = sk
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("pem");
        let ct = rsa_oaep_sha1_encrypt(&pem, &[9u8; 32]).expect("encrypt");
        assert_eq!(ct.len(), 256);
        assert_eq!(rsa_oaep_sha1_decrypt(&sk, &ct).expect("decrypt"), [9u8; 32]);
    }

    #[test]
    fn wrong_key_and_garbage_are_errors() {
        let sk = key();
        let other = key();
        let ct = rsa_oaep_sha1_encrypt_key(&sk.to_public_key(), b"U share").expect("encrypt");
        assert!(matches!(
            rsa_oaep_sha1_decrypt(&other, &ct),
            Err(PayloadError::OaepDecrypt)
        ));
        assert!(rsa_oaep_sha1_decrypt(&sk, &ct[..100]).is_err());
        assert!(rsa_oaep_sha1_decrypt(&sk, &[]).is_err());
        assert!(rsa_oaep_sha1_encrypt("not a pem", b"x").is_err());
        // Too long for OAEP-SHA1 with a 2048-bit key (max 214 bytes).
        assert!(matches!(
            rsa_oaep_sha1_encrypt_key(&sk.to_public_key(), &[0u8; 215]),
            Err(PayloadError::OaepEncrypt(_))
        ));
    }
}
