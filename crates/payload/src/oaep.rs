//! RSA-OAEP with SHA-1 and MGF1-SHA-1, no label: how the tenant and the verifier wrap
//! the key shares U and V for the agent's payload key (PROTOCOL.md §4.6).

use rsa::rand_core::CryptoRngCore;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use zeroize::Zeroizing;

use crate::keys::parse_rsa_public_key_pem;
use crate::{KEY_LEN, PayloadError};

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

/// Decrypts an RSA-OAEP-SHA1 ciphertext with the agent's payload key, blinded with the
/// OS random generator (see [`rsa_oaep_sha1_decrypt_with`]).
pub fn rsa_oaep_sha1_decrypt(key: &RsaPrivateKey, data: &[u8]) -> Result<Vec<u8>, PayloadError> {
    rsa_oaep_sha1_decrypt_with(&mut rand::rngs::OsRng, key, data)
}

/// Decrypts with RSA blinding: the ciphertext is multiplied by `r^e` for a fresh random
/// `r` before the private-key operation, so its timing does not depend on the
/// attacker-chosen ciphertext (the Marvin attack, RUSTSEC-2023-0071, needs exactly that
/// dependence). Every failure is the same [`PayloadError::OaepDecrypt`].
pub fn rsa_oaep_sha1_decrypt_with<R: CryptoRngCore>(
    rng: &mut R,
    key: &RsaPrivateKey,
    data: &[u8],
) -> Result<Vec<u8>, PayloadError> {
    key.decrypt_blinded(rng, Oaep::new::<sha1::Sha1>(), data)
        .map_err(|_| PayloadError::OaepDecrypt)
}

/// Decrypts a key share (U or V) sent to the agent: a wrong key, a corrupted ciphertext
/// and a plaintext of the wrong length are one and the same
/// [`PayloadError::OaepDecrypt`], so an answer never tells which check failed.
pub fn decrypt_key_share(key: &RsaPrivateKey, data: &[u8]) -> Result<[u8; KEY_LEN], PayloadError> {
    let plain = Zeroizing::new(rsa_oaep_sha1_decrypt(key, data)?);
    plain
        .as_slice()
        .try_into()
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

    /// Counts the random bytes drawn, to show the private-key operation is blinded.
    struct CountingRng(u64);

    impl rsa::rand_core::RngCore for CountingRng {
        fn next_u32(&mut self) -> u32 {
            self.0 += 4;
            rand::rngs::OsRng.next_u32()
        }
        fn next_u64(&mut self) -> u64 {
            self.0 += 8;
            rand::rngs::OsRng.next_u64()
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            self.0 += dest.len() as u64;
            rand::rngs::OsRng.fill_bytes(dest)
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl rsa::rand_core::CryptoRng for CountingRng {}

    #[test]
    fn decryption_is_blinded_with_fresh_randomness() {
        let sk = key();
        let ct = rsa_oaep_sha1_encrypt_key(&sk.to_public_key(), &[5u8; 32]).expect("encrypt");
        let mut rng = CountingRng(0);
        let plain = rsa_oaep_sha1_decrypt_with(&mut rng, &sk, &ct).expect("decrypt");
        assert_eq!(plain, [5u8; 32]);
        // A blinding factor is at least as long as the 2048-bit modulus.
        assert!(rng.0 >= 256, "only {} random bytes drawn", rng.0);
    }

    #[test]
    fn every_unusable_share_is_the_same_error() {
        let sk = key();
        let pk = sk.to_public_key();
        let other = key().to_public_key();
        let good = rsa_oaep_sha1_encrypt_key(&pk, &[1u8; 32]).expect("encrypt");
        assert_eq!(decrypt_key_share(&sk, &good).expect("share"), [1u8; 32]);
        let cases = [
            rsa_oaep_sha1_encrypt_key(&pk, &[1u8; 31]).expect("encrypt"),
            rsa_oaep_sha1_encrypt_key(&pk, &[1u8; 33]).expect("encrypt"),
            rsa_oaep_sha1_encrypt_key(&pk, &[]).expect("encrypt"),
            rsa_oaep_sha1_encrypt_key(&other, &[1u8; 32]).expect("encrypt"),
            vec![0u8; 256],
            good[..100].to_vec(),
        ];
        for ct in cases {
            let err = decrypt_key_share(&sk, &ct).expect_err("unusable");
            assert!(matches!(err, PayloadError::OaepDecrypt), "{err}");
        }
    }
}
