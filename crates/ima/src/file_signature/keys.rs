//! Public keys that verify IMA file signatures: loading them from DER SubjectPublicKeyInfo,
//! X.509 certificates (DER or PEM) and PEM public keys, their IMA key ids, and the signature
//! check over a file digest.
//!
//! Key ids follow upstream Keylime (`keylime/ima/file_signatures.py`): for a bare public key,
//! the last 4 bytes (big-endian) of SHA-1 over the PKCS#1 `RSAPublicKey` DER (RSA) or the
//! X9.62 uncompressed point (EC); for a certificate, the last 4 bytes of its Subject Key
//! Identifier when it has one of at least 4 bytes, else the public key's id.
//!
//! RSA keys verify PKCS#1 v1.5 signatures; EC keys on P-256, P-384 and secp256k1 verify DER
//! ECDSA signatures over the digest as given (prehashed). Keys of other EC curves load (so
//! they can be learned, as upstream does) but never verify.

use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use sha1::{Digest as _, Sha1};
use x509_parser::prelude::{FromDer as _, ParsedExtension, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

/// Largest RSA modulus accepted (bits); IMA keys are 2048 to 4096 bits.
const MAX_RSA_BITS: usize = 16384;

// OID content bytes (DER without tag and length)
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_SECP256K1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x0a];

/// Why bytes did not give a usable public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a DER SubjectPublicKeyInfo, certificate, or PEM of either.
    #[error("not a public key or certificate")]
    NotAKey,
    /// A key, but of a type upstream Keylime does not support either (DSA, EdDSA, …).
    #[error("unsupported key type {0}")]
    UnsupportedType(String),
    /// A supported type whose key material is malformed.
    #[error("malformed {kind} key: {problem}")]
    Malformed { kind: &'static str, problem: String },
}

/// The verifying half of a key.
#[derive(Clone)]
pub(crate) enum Verifier {
    Rsa(Box<RsaPublicKey>),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    K256(k256::ecdsa::VerifyingKey),
    /// An EC key on a curve this crate cannot verify with (named by its OID).
    OtherCurve,
}

/// A public key loaded for IMA signature verification.
#[derive(Clone)]
pub struct PublicKey {
    /// The IMA key id signatures name.
    keyid: u32,
    /// DER SubjectPublicKeyInfo (how learned keys are stored).
    spki_der: Vec<u8>,
    verifier: Verifier,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("keyid", &format_args!("{:08x}", self.keyid))
            .field("kind", &self.kind())
            .finish()
    }
}

fn last4(bytes: &[u8]) -> u32 {
    match bytes.last_chunk::<4>() {
        Some(b) => u32::from_be_bytes(*b),
        None => 0,
    }
}

fn sha1_keyid(bytes: &[u8]) -> u32 {
    last4(&Sha1::digest(bytes))
}

fn malformed(kind: &'static str, problem: impl ToString) -> KeyError {
    KeyError::Malformed {
        kind,
        problem: problem.to_string(),
    }
}

fn oid_name(oid: &[u8]) -> String {
    match oid {
        [0x2b, 0x65, 0x70] => "Ed25519".into(),
        [0x2b, 0x65, 0x71] => "Ed448".into(),
        [0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01] => "DSA".into(),
        _ => {
            let hex: String = oid.iter().map(|b| format!("{b:02x}")).collect();
            format!("with algorithm OID bytes {hex}")
        }
    }
}

impl PublicKey {
    /// Loads a DER SubjectPublicKeyInfo; the key id is derived from the key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let (rest, spki) = SubjectPublicKeyInfo::from_der(der).map_err(|_| KeyError::NotAKey)?;
        if !rest.is_empty() {
            return Err(KeyError::NotAKey);
        }
        Self::from_spki(&spki, None)
    }

    /// Loads a DER SubjectPublicKeyInfo with a given key id (0 means "derive it", as
    /// upstream treats a falsy id).
    pub fn from_spki_der_with_keyid(der: &[u8], keyid: u32) -> Result<Self, KeyError> {
        let mut k = Self::from_spki_der(der)?;
        if keyid != 0 {
            k.keyid = keyid;
        }
        Ok(k)
    }

    /// Loads a DER X.509 certificate's key; the key id comes from its Subject Key Identifier
    /// when present.
    pub fn from_certificate_der(der: &[u8]) -> Result<Self, KeyError> {
        let (rest, cert) = X509Certificate::from_der(der).map_err(|_| KeyError::NotAKey)?;
        if !rest.is_empty() {
            return Err(KeyError::NotAKey);
        }
        Self::from_certificate(&cert)
    }

    fn from_certificate(cert: &X509Certificate<'_>) -> Result<Self, KeyError> {
        let skid = cert
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(kid) if kid.0.len() >= 4 => {
                    Some(last4(kid.0))
                }
                _ => None,
            });
        Self::from_spki(cert.public_key(), skid)
    }

    /// Whatever upstream's `get_pubkey` recognises among DER and PEM certificates and public
    /// keys (private keys are not accepted here).
    pub fn from_key_material(data: &[u8]) -> Result<Self, KeyError> {
        if data.first() == Some(&0x30) {
            match Self::from_certificate_der(data) {
                Err(KeyError::NotAKey) => {}
                other => return other,
            }
            match Self::from_spki_der(data) {
                Err(KeyError::NotAKey) => {}
                other => return other,
            }
        }
        if let Some(start) = find(data, b"-----BEGIN ") {
            let pem = &data[start..];
            if let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(pem) {
                match pem.label.as_str() {
                    "CERTIFICATE" | "X509 CERTIFICATE" => {
                        return Self::from_certificate_der(&pem.contents);
                    }
                    "PUBLIC KEY" => return Self::from_spki_der(&pem.contents),
                    _ => {}
                }
            }
        }
        Err(KeyError::NotAKey)
    }

    fn from_spki(spki: &SubjectPublicKeyInfo<'_>, keyid: Option<u32>) -> Result<Self, KeyError> {
        let alg = spki.algorithm.algorithm.as_bytes();
        let bits: &[u8] = &spki.subject_public_key.data;
        let (verifier, derived) = if alg == OID_RSA_ENCRYPTION {
            let parsed = spki.parsed().map_err(|e| malformed("RSA", e))?;
            let x509_parser::public_key::PublicKey::RSA(rsa) = parsed else {
                return Err(malformed("RSA", "not an RSAPublicKey"));
            };
            let key = RsaPublicKey::new_with_max_size(
                BigUint::from_bytes_be(rsa.modulus),
                BigUint::from_bytes_be(rsa.exponent),
                MAX_RSA_BITS,
            )
            .map_err(|e| malformed("RSA", e))?;
            // the BIT STRING of an RSA SPKI is the PKCS#1 RSAPublicKey DER
            (Verifier::Rsa(Box::new(key)), sha1_keyid(bits))
        } else if alg == OID_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .ok_or_else(|| malformed("EC", "no named curve"))?;
            ec_key(curve.as_bytes(), bits)?
        } else {
            return Err(KeyError::UnsupportedType(oid_name(alg)));
        };
        Ok(PublicKey {
            keyid: keyid.unwrap_or(derived),
            spki_der: spki.raw.to_vec(),
            verifier,
        })
    }

    /// The IMA key id.
    pub fn keyid(&self) -> u32 {
        self.keyid
    }

    /// DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// `rsa`, `p256`, `p384`, `secp256k1` or `ec-other`.
    pub fn kind(&self) -> &'static str {
        match self.verifier {
            Verifier::Rsa(_) => "rsa",
            Verifier::P256(_) => "p256",
            Verifier::P384(_) => "p384",
            Verifier::K256(_) => "secp256k1",
            Verifier::OtherCurve => "ec-other",
        }
    }

    /// Checks `signature` over `digest` (already hashed with `hash_name`).
    pub fn verify_digest(&self, hash_name: &str, digest: &[u8], signature: &[u8]) -> bool {
        match &self.verifier {
            Verifier::Rsa(key) => {
                let Some(scheme) = pkcs1v15(hash_name) else {
                    return false;
                };
                key.verify(scheme, digest, signature).is_ok()
            }
            Verifier::P256(key) => {
                use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
                p256::ecdsa::Signature::from_der(signature)
                    .is_ok_and(|s| key.verify_prehash(digest, &s).is_ok())
            }
            Verifier::P384(key) => {
                use p384::ecdsa::signature::hazmat::PrehashVerifier as _;
                p384::ecdsa::Signature::from_der(signature)
                    .is_ok_and(|s| key.verify_prehash(digest, &s).is_ok())
            }
            Verifier::K256(key) => {
                use k256::ecdsa::signature::hazmat::PrehashVerifier as _;
                // OpenSSL (and so upstream) accepts high-S signatures; k256 wants them low
                k256::ecdsa::Signature::from_der(signature).is_ok_and(|s| {
                    let s = s.normalize_s().unwrap_or(s);
                    key.verify_prehash(digest, &s).is_ok()
                })
            }
            Verifier::OtherCurve => false,
        }
    }
}

fn ec_key(curve: &[u8], point: &[u8]) -> Result<(Verifier, u32), KeyError> {
    let bad = |e: &dyn std::fmt::Display| malformed("EC", e);
    Ok(if curve == OID_P256 {
        let k = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|e| bad(&e))?;
        let id = sha1_keyid(k.to_encoded_point(false).as_bytes());
        (Verifier::P256(k), id)
    } else if curve == OID_P384 {
        let k = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|e| bad(&e))?;
        let id = sha1_keyid(k.to_encoded_point(false).as_bytes());
        (Verifier::P384(k), id)
    } else if curve == OID_SECP256K1 {
        let k = k256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|e| bad(&e))?;
        let id = sha1_keyid(k.to_encoded_point(false).as_bytes());
        (Verifier::K256(k), id)
    } else {
        if point.is_empty() {
            return Err(malformed("EC", "empty point"));
        }
        // compressed points of other curves cannot be expanded here; their id is a guess
        (Verifier::OtherCurve, sha1_keyid(point))
    })
}

fn pkcs1v15(hash_name: &str) -> Option<Pkcs1v15Sign> {
    Some(match hash_name {
        "sha1" => Pkcs1v15Sign::new::<sha1::Sha1>(),
        "sha224" => Pkcs1v15Sign::new::<sha2::Sha224>(),
        "sha256" => Pkcs1v15Sign::new::<sha2::Sha256>(),
        "sha384" => Pkcs1v15Sign::new::<sha2::Sha384>(),
        "sha512" => Pkcs1v15Sign::new::<sha2::Sha512>(),
        _ => return None,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    // upstream's IMA_KEYRING_STRING: an RSA-2048 key and a secp256k1 key with their keyids
    const RSA_SPKI: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1cD7bW5tX5qIVgWskS5tzY+XpqWzcW6HFq5npj8dHFIWsAJJCUdoSU631hkyY8HP/RfXDPq/J4IeKvx35EVXj49t1Z1FTJBgUlEbkKvqm0rY6jo7PnJ6BsDRrauXtiEXVKNXcWXDk8ES+9v9Cz26BJYAr+5Xgm2aEyAbj8GhicxUZfsjDm8eJ7ZnQKuhF7jejG5dYAYxnBVu99bQJHI5Fsu3dAjGbys9v7ToNbonS+1bJXdHyEE0swhxBOPvvV6vx5CzRNw1Sou3rT19T4j8wpsFOyYXVcbbRVBAmBE2Qy2UHvojFqaJN/A9lztllyER1S5heGG6CxK3GoR6pkOXAQIDAQAB";
    const K256_SPKI: &str = "MFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAEnNH3Y/xOTwRRd8D6hpodRLnVx71qDTLvJHouno7nU7JSzcXWN1PxK+HQEh1V7sMdwBER4KFKE635JTv6C+BRBg==";

    #[test]
    fn derived_keyids_equal_upstreams() {
        let rsa = PublicKey::from_spki_der(&b64(RSA_SPKI)).unwrap();
        assert_eq!(rsa.keyid(), 4081397027);
        assert_eq!(rsa.kind(), "rsa");
        let k = PublicKey::from_spki_der(&b64(K256_SPKI)).unwrap();
        assert_eq!(k.keyid(), 1394556965);
        assert_eq!(k.kind(), "secp256k1");
        assert_eq!(
            PublicKey::from_spki_der_with_keyid(&b64(K256_SPKI), 0)
                .unwrap()
                .keyid(),
            1394556965
        );
        assert_eq!(
            PublicKey::from_spki_der_with_keyid(&b64(K256_SPKI), 7)
                .unwrap()
                .keyid(),
            7
        );
    }

    #[test]
    fn garbage_and_unsupported_keys_are_told_apart() {
        assert_eq!(
            PublicKey::from_key_material(b"dm_version=4.46.0;"),
            Err(KeyError::NotAKey)
        );
        assert_eq!(
            PublicKey::from_key_material(&[0x30, 0x03, 0x02]),
            Err(KeyError::NotAKey)
        );
        assert_eq!(PublicKey::from_key_material(&[]), Err(KeyError::NotAKey));
        // an Ed25519 SubjectPublicKeyInfo
        let mut ed = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        ed.extend_from_slice(&[7; 32]);
        assert_eq!(
            PublicKey::from_key_material(&ed),
            Err(KeyError::UnsupportedType("Ed25519".into()))
        );
        // upstream's test certificate (P-256, with a Subject Key Identifier ending 2cb6058c)
        let cert = hex_decode(ECDSA_CERT);
        let k = PublicKey::from_key_material(&cert).unwrap();
        assert_eq!((k.kind(), k.keyid()), ("p256", 0x2cb6058c));
        let from_spki = PublicKey::from_spki_der(k.spki_der()).unwrap();
        // this certificate's identifier is the usual SHA-1 of the key bits, so the id
        // derived from the bare key is the same
        assert_eq!(from_spki.keyid(), k.keyid());
        // the same key with its point moved off the curve
        let mut bad = k.spki_der().to_vec();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(matches!(
            PublicKey::from_spki_der(&bad),
            Err(KeyError::Malformed { kind: "EC", .. })
        ));
        // PEM wrapping
        let pem = format!(
            "junk\n-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::engine::general_purpose::STANDARD.encode(&cert)
        );
        assert_eq!(
            PublicKey::from_key_material(pem.as_bytes())
                .unwrap()
                .keyid(),
            0x2cb6058c
        );
        // truncated certificate
        assert_eq!(
            PublicKey::from_key_material(&cert[..cert.len() - 1]),
            Err(KeyError::NotAKey)
        );
    }

    fn hex_decode(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    const ECDSA_CERT: &str = "308201d130820178a003020102020101300906072a8648ce3d0401301b3119301706035504030c1054657374696e672d45434453412d4341301e170d3231303631313133353831365a170d3232303631313133353831365a3021311f301d06035504030c1665636473612d63612d7369676e65642d65632d6b65793059301306072a8648ce3d020106082a8648ce3d030107034200044ce55be36765b59de2767f6d6721be8bea8e3db4ccc25ab76c30f5d1c11752ae1699cc39d31b378f69fecbe65ce1eb09e075f840fe4c052bafb9039742b76202a381a73081a430090603551d1304023000301d0603551d0e04160414b6fb3c083d19695be441c5f59afb95742cb6058c30560603551d23044f304d80140a51da379e45bd7ac623c3f765b53e1e2dde5195a11fa41d301b3119301706035504030c1054657374696e672d45434453412d434182142bb351b0d645e4d8594316ac3c96fc6d9c83791530130603551d25040c300a06082b06010505070302300b0603551d0f040403020780300906072a8648ce3d04010348003045022033d47b623c9feefab7d6e68b001ac6463433f99b61ce7b951a32da065a5d17af022100f3d73e38070053aec63a941ed36ae0dcfa25ed9cd538c459732a7e782132a4ca";

    impl PartialEq for PublicKey {
        fn eq(&self, other: &Self) -> bool {
            self.keyid == other.keyid && self.spki_der == other.spki_der
        }
    }
}
