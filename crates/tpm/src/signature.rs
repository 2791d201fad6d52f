//! `TPMT_SIGNATURE`: parsing, marshalling, and verification against a TPM public key.

use ecdsa::signature::hazmat::PrehashVerifier;

use crate::alg::{HashAlg, SignAlg, id};
use crate::error::{Result, TpmError};
use crate::marshal::{Reader, Writer};
use crate::public::{Public, PublicKey};
use crate::spki::{EcKey, pad_coordinate};

const MAX_RSA_SIG: usize = 1024;
const MAX_ECC_PARAM: usize = 128;

/// A TPM signature of a supported scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    RsaSsa {
        hash: HashAlg,
        sig: Vec<u8>,
    },
    RsaPss {
        hash: HashAlg,
        sig: Vec<u8>,
    },
    Ecdsa {
        hash: HashAlg,
        r: Vec<u8>,
        s: Vec<u8>,
    },
}

impl Signature {
    /// The hash the signed message was digested with.
    pub fn hash(&self) -> HashAlg {
        match self {
            Signature::RsaSsa { hash, .. }
            | Signature::RsaPss { hash, .. }
            | Signature::Ecdsa { hash, .. } => *hash,
        }
    }

    pub fn sign_alg(&self) -> SignAlg {
        match self {
            Signature::RsaSsa { .. } => SignAlg::RsaSsa,
            Signature::RsaPss { .. } => SignAlg::RsaPss,
            Signature::Ecdsa { .. } => SignAlg::Ecdsa,
        }
    }

    /// Parse a `TPMT_SIGNATURE`; the whole input must be consumed.
    pub fn parse(tpmt_signature: &[u8]) -> Result<Signature> {
        let mut r = Reader::new(tpmt_signature, "TPMT_SIGNATURE");
        let alg_at = r.offset();
        let alg = r.u16()?;
        let sign =
            SignAlg::from_tpm_id(alg).ok_or_else(|| r.bad_value("sigAlg", alg_at, alg.into()))?;
        let hash_at = r.offset();
        let hash_id = r.u16()?;
        let hash = HashAlg::from_tpm_id(hash_id)
            .ok_or_else(|| r.bad_value("hash", hash_at, hash_id.into()))?;
        let sig = match sign {
            SignAlg::RsaSsa => Signature::RsaSsa {
                hash,
                sig: r.tpm2b(MAX_RSA_SIG)?.to_vec(),
            },
            SignAlg::RsaPss => Signature::RsaPss {
                hash,
                sig: r.tpm2b(MAX_RSA_SIG)?.to_vec(),
            },
            SignAlg::Ecdsa => Signature::Ecdsa {
                hash,
                r: r.tpm2b(MAX_ECC_PARAM)?.to_vec(),
                s: r.tpm2b(MAX_ECC_PARAM)?.to_vec(),
            },
        };
        r.finish()?;
        Ok(sig)
    }

    /// The `TPMT_SIGNATURE` encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u16(self.sign_alg().tpm_id()).u16(self.hash().tpm_id());
        match self {
            Signature::RsaSsa { sig, .. } | Signature::RsaPss { sig, .. } => w.tpm2b(sig),
            Signature::Ecdsa { r, s, .. } => w.tpm2b(r).tpm2b(s),
        };
        w.into_vec()
    }
}

fn bad(reason: impl Into<String>) -> TpmError {
    TpmError::BadSignature(reason.into())
}

/// Verify `sig` over `message` with `key`; the digest is `sig.hash()(message)`.
///
/// RSASSA (PKCS#1 v1.5) and RSAPSS (salt = digest length, or the maximum) need an RSA key;
/// ECDSA an ECC key on P-256/P-384/P-521. Which schemes a caller accepts for a purpose
/// (e.g. upstream rejects RSAPSS quotes) is the caller's policy. To check many signatures
/// with one key, prepare it once with [`VerifyingKey::new`].
pub fn verify_signature(key: &Public, message: &[u8], sig: &Signature) -> Result<()> {
    VerifyingKey::new(key)?.verify(message, sig)
}

/// A TPM public key decoded once for verifying many signatures (a verifier keeps one per
/// AK instead of re-parsing the key for every quote).
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    key: Prepared,
}

#[derive(Debug, Clone)]
enum Prepared {
    Rsa(rsa::RsaPublicKey),
    P256(ecdsa::VerifyingKey<p256::NistP256>),
    P384(ecdsa::VerifyingKey<p384::NistP384>),
    P521(ecdsa::VerifyingKey<p521::NistP521>),
}

impl VerifyingKey {
    /// Decode and validate `key` (RSA, or ECC on P-256/P-384/P-521).
    pub fn new(key: &Public) -> Result<Self> {
        let bad_key = |e: ecdsa::Error| TpmError::InvalidKey {
            what: "ECDSA",
            reason: e.to_string(),
        };
        let key = match &key.key {
            PublicKey::Rsa { .. } => Prepared::Rsa(key.rsa_key()?),
            PublicKey::Ecc { .. } => match key.ec_key()? {
                EcKey::P256(pk) => Prepared::P256(
                    ecdsa::VerifyingKey::from_affine(*pk.as_affine()).map_err(bad_key)?,
                ),
                EcKey::P384(pk) => Prepared::P384(
                    ecdsa::VerifyingKey::from_affine(*pk.as_affine()).map_err(bad_key)?,
                ),
                EcKey::P521(pk) => Prepared::P521(
                    ecdsa::VerifyingKey::from_affine(*pk.as_affine()).map_err(bad_key)?,
                ),
            },
        };
        Ok(VerifyingKey { key })
    }

    /// Verify `sig` over `message`; see [`verify_signature`].
    pub fn verify(&self, message: &[u8], sig: &Signature) -> Result<()> {
        let digest = sig.hash().digest(message);
        match (sig, &self.key) {
            (Signature::RsaSsa { hash, sig }, Prepared::Rsa(key)) => {
                let scheme = match hash {
                    HashAlg::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                    HashAlg::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    HashAlg::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
                    HashAlg::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
                    HashAlg::Sm3_256 => {
                        return Err(TpmError::UnsupportedAlgorithm {
                            what: "RSASSA hash",
                            alg: id::SM3_256,
                        });
                    }
                };
                key.verify(scheme, &digest, sig)
                    .map_err(|e| bad(format!("RSASSA-{hash}: {e}")))
            }
            (Signature::RsaPss { hash, sig }, Prepared::Rsa(key)) => {
                let key_len = rsa::traits::PublicKeyParts::size(key);
                let h_len = hash.digest_len();
                // The TPM uses salt = digest length; FIPS-mode TPMs may use the maximum.
                let max_salt = key_len.saturating_sub(h_len + 2);
                for salt in [h_len, max_salt] {
                    let scheme = match hash {
                        HashAlg::Sha1 => rsa::Pss::new_with_salt::<sha1::Sha1>(salt),
                        HashAlg::Sha256 => rsa::Pss::new_with_salt::<sha2::Sha256>(salt),
                        HashAlg::Sha384 => rsa::Pss::new_with_salt::<sha2::Sha384>(salt),
                        HashAlg::Sha512 => rsa::Pss::new_with_salt::<sha2::Sha512>(salt),
                        HashAlg::Sm3_256 => rsa::Pss::new_with_salt::<sm3::Sm3>(salt),
                    };
                    if key.verify(scheme, &digest, sig).is_ok() {
                        return Ok(());
                    }
                }
                Err(bad(format!("RSAPSS-{hash}: verification error")))
            }
            (Signature::Ecdsa { hash, r, s }, key) => {
                macro_rules! ecdsa_verify {
                    ($curve:ty, $fb:ty, $vk:expr, $len:expr) => {{
                        let r = pad_coordinate(r, $len, "ECDSA r")?;
                        let s = pad_coordinate(s, $len, "ECDSA s")?;
                        let sig = ecdsa::Signature::<$curve>::from_scalars(
                            <$fb>::clone_from_slice(&r),
                            <$fb>::clone_from_slice(&s),
                        )
                        .map_err(|e| bad(format!("ECDSA-{hash}: bad r/s: {e}")))?;
                        $vk.verify_prehash(&digest, &sig)
                            .map_err(|e| bad(format!("ECDSA-{hash}: {e}")))
                    }};
                }
                match key {
                    Prepared::P256(vk) => ecdsa_verify!(p256::NistP256, p256::FieldBytes, vk, 32),
                    Prepared::P384(vk) => ecdsa_verify!(p384::NistP384, p384::FieldBytes, vk, 48),
                    Prepared::P521(vk) => ecdsa_verify!(p521::NistP521, p521::FieldBytes, vk, 66),
                    Prepared::Rsa(_) => {
                        Err(bad("ECDSA signature cannot be checked with an RSA key"))
                    }
                }
            }
            (sig, _) => Err(bad(format!(
                "{} signature cannot be checked with an ECC key",
                sig.sign_alg()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates;
    use ecdsa::signature::hazmat::PrehashSigner;
    use rand::SeedableRng;
    use rsa::traits::PublicKeyParts;

    #[test]
    fn ecdsa_p256_verifies_and_detects_tampering() {
        let sk = p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap();
        let pt = sk.verifying_key().to_encoded_point(false);
        let tpmt = templates::ecc_tpmt(
            HashAlg::Sha256,
            templates::AK_ATTRIBUTES,
            &[],
            None,
            Some((id::ECDSA, HashAlg::Sha256)),
            3,
            pt.x().unwrap(),
            pt.y().unwrap(),
        );
        let key = Public::from_tpmt(&tpmt).unwrap();
        let msg = b"attest bytes";
        let sig: p256::ecdsa::Signature = sk.sign_prehash(&HashAlg::Sha256.digest(msg)).unwrap();
        let (r, s) = sig.split_bytes();
        let sig = Signature::Ecdsa {
            hash: HashAlg::Sha256,
            r: r.to_vec(),
            s: s.to_vec(),
        };
        let wire = sig.to_bytes();
        assert_eq!(Signature::parse(&wire).unwrap(), sig);
        let prepared = VerifyingKey::new(&key).unwrap();
        prepared.verify(msg, &sig).unwrap();
        assert!(prepared.verify(b"attest bytez", &sig).is_err());
        verify_signature(&key, msg, &sig).unwrap();
        let rsassa = Signature::RsaSsa {
            hash: HashAlg::Sha256,
            sig: vec![1; 256],
        };
        assert!(matches!(
            prepared.verify(msg, &rsassa),
            Err(TpmError::BadSignature(_))
        ));
    }

    #[test]
    fn rsassa_and_rsapss_verify() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let sk = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let tpmt = templates::rsa_tpmt(
            HashAlg::Sha256,
            templates::AK_ATTRIBUTES,
            &[],
            None,
            Some((id::RSASSA, HashAlg::Sha256)),
            2048,
            &sk.n().to_bytes_be(),
        );
        let key = Public::from_tpmt(&tpmt).unwrap();
        let msg = b"quote";
        let digest = HashAlg::Sha256.digest(msg);
        let sig = sk
            .sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest)
            .unwrap();
        let ssa = Signature::RsaSsa {
            hash: HashAlg::Sha256,
            sig,
        };
        verify_signature(&key, msg, &ssa).unwrap();
        assert!(verify_signature(&key, b"other", &ssa).is_err());

        let pss = sk
            .sign_with_rng(&mut rng, rsa::Pss::new::<sha2::Sha256>(), &digest)
            .unwrap();
        let pss = Signature::RsaPss {
            hash: HashAlg::Sha256,
            sig: pss,
        };
        verify_signature(&key, msg, &pss).unwrap();
        // A signature of one scheme does not pass as another.
        let Signature::RsaPss { sig, .. } = pss else {
            unreachable!()
        };
        let forged = Signature::RsaSsa {
            hash: HashAlg::Sha256,
            sig,
        };
        assert!(verify_signature(&key, msg, &forged).is_err());
        // An ECDSA signature never passes with an RSA key.
        let ecdsa = Signature::Ecdsa {
            hash: HashAlg::Sha256,
            r: vec![1],
            s: vec![1],
        };
        assert!(matches!(
            verify_signature(&key, msg, &ecdsa),
            Err(TpmError::BadSignature(_))
        ));
    }

    #[test]
    fn parse_errors() {
        let good = Signature::RsaSsa {
            hash: HashAlg::Sha256,
            sig: vec![1; 256],
        }
        .to_bytes();
        for len in 0..good.len() {
            assert!(
                Signature::parse(&good[..len]).is_err(),
                "accepted {len} bytes"
            );
        }
        let mut hmac = good.clone();
        hmac[1] = 0x05;
        assert!(matches!(
            Signature::parse(&hmac),
            Err(TpmError::BadValue {
                field: "sigAlg",
                offset: 0,
                ..
            })
        ));
        let mut hash = good.clone();
        hash[3] = 0x99;
        assert!(matches!(
            Signature::parse(&hash),
            Err(TpmError::BadValue {
                field: "hash",
                offset: 2,
                ..
            })
        ));
        let mut long = good;
        long.push(0);
        assert!(matches!(
            Signature::parse(&long),
            Err(TpmError::TrailingBytes { .. })
        ));
    }
}
