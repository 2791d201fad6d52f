//! Verifies one certificate's signature with its issuer's public key, over the
//! TBS bytes exactly as signed. Supports what TPM vendor CAs use: RSA PKCS#1 v1.5
//! (SHA-1/224/256/384/512), RSA-PSS (any salt length, MGF1 with the same hash)
//! and ECDSA on P-256/P-384/P-521 with SHA-1/224/256/384/512. Implemented with
//! RustCrypto because ring lacks SHA-1 ECDSA, mismatched curve/hash pairs and
//! arbitrary PSS salt lengths.

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, Pss, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use x509_parser::prelude::FromDer;
use x509_parser::signature_algorithm::RsaSsaPssParams;

use crate::certinfo::CertInfo;

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";
const OID_MGF1: &str = "1.2.840.113549.1.1.8";

/// Hash functions used in certificate signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_oid(oid: &str) -> Option<Hash> {
        Some(match oid {
            "1.3.14.3.2.26" => Hash::Sha1,
            "2.16.840.1.101.3.4.2.4" => Hash::Sha224,
            "2.16.840.1.101.3.4.2.1" => Hash::Sha256,
            "2.16.840.1.101.3.4.2.2" => Hash::Sha384,
            "2.16.840.1.101.3.4.2.3" => Hash::Sha512,
            _ => return None,
        })
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => Sha1::digest(data).to_vec(),
            Hash::Sha224 => Sha224::digest(data).to_vec(),
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha384 => Sha384::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn pkcs1v15(self) -> Pkcs1v15Sign {
        match self {
            Hash::Sha1 => Pkcs1v15Sign::new::<Sha1>(),
            Hash::Sha224 => Pkcs1v15Sign::new::<Sha224>(),
            Hash::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
            Hash::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
            Hash::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
        }
    }

    fn pss(self, salt_len: usize) -> Pss {
        match self {
            Hash::Sha1 => Pss::new_with_salt::<Sha1>(salt_len),
            Hash::Sha224 => Pss::new_with_salt::<Sha224>(salt_len),
            Hash::Sha256 => Pss::new_with_salt::<Sha256>(salt_len),
            Hash::Sha384 => Pss::new_with_salt::<Sha384>(salt_len),
            Hash::Sha512 => Pss::new_with_salt::<Sha512>(salt_len),
        }
    }
}

/// A certificate signature algorithm this module understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureScheme {
    /// RSA PKCS#1 v1.5 with the given hash.
    RsaPkcs1(HashName),
    /// RSA-PSS with the given hash and salt length.
    RsaPss(HashName, u32),
    /// ECDSA with the given hash.
    Ecdsa(HashName),
}

/// Public name of a hash function (for verdicts and messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashName {
    /// SHA-1.
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl From<Hash> for HashName {
    fn from(h: Hash) -> Self {
        match h {
            Hash::Sha1 => HashName::Sha1,
            Hash::Sha224 => HashName::Sha224,
            Hash::Sha256 => HashName::Sha256,
            Hash::Sha384 => HashName::Sha384,
            Hash::Sha512 => HashName::Sha512,
        }
    }
}

/// Why a signature could not be verified.
#[derive(Debug)]
pub(crate) enum SigError {
    /// Algorithm or key type not supported (not a forgery, but not acceptable either).
    Unsupported(String),
    /// The issuer key could not be parsed.
    BadKey(String),
    /// The signature is malformed or does not verify.
    Invalid(String),
}

enum Scheme {
    Pkcs1(Hash),
    Pss { hash: Hash, salt_len: usize },
    Ecdsa(Hash),
}

fn scheme_of(cert: &CertInfo) -> Result<Scheme, SigError> {
    Ok(match cert.sig_alg.as_str() {
        "1.2.840.113549.1.1.5" => Scheme::Pkcs1(Hash::Sha1),
        "1.2.840.113549.1.1.14" => Scheme::Pkcs1(Hash::Sha224),
        "1.2.840.113549.1.1.11" => Scheme::Pkcs1(Hash::Sha256),
        "1.2.840.113549.1.1.12" => Scheme::Pkcs1(Hash::Sha384),
        "1.2.840.113549.1.1.13" => Scheme::Pkcs1(Hash::Sha512),
        "1.2.840.10045.4.1" => Scheme::Ecdsa(Hash::Sha1),
        "1.2.840.10045.4.3.1" => Scheme::Ecdsa(Hash::Sha224),
        "1.2.840.10045.4.3.2" => Scheme::Ecdsa(Hash::Sha256),
        "1.2.840.10045.4.3.3" => Scheme::Ecdsa(Hash::Sha384),
        "1.2.840.10045.4.3.4" => Scheme::Ecdsa(Hash::Sha512),
        OID_RSASSA_PSS => pss_scheme(cert.sig_params.as_deref())?,
        other => {
            return Err(SigError::Unsupported(format!(
                "signature algorithm {other}"
            )));
        }
    })
}

fn pss_scheme(params: Option<&[u8]>) -> Result<Scheme, SigError> {
    let raw = params.ok_or_else(|| SigError::Invalid("RSA-PSS without parameters".into()))?;
    let (_, any) = x509_parser::der_parser::asn1_rs::Any::from_der(raw)
        .map_err(|e| SigError::Invalid(format!("RSA-PSS parameters: {e}")))?;
    let params = RsaSsaPssParams::try_from(&any)
        .map_err(|e| SigError::Invalid(format!("RSA-PSS parameters: {e}")))?;
    let hash_oid = params.hash_algorithm_oid().to_id_string();
    let hash = Hash::from_oid(&hash_oid)
        .ok_or_else(|| SigError::Unsupported(format!("RSA-PSS hash {hash_oid}")))?;
    let mgf = params
        .mask_gen_algorithm()
        .map_err(|e| SigError::Invalid(format!("RSA-PSS mask generation: {e}")))?;
    let mgf_hash = mgf.hash.to_id_string();
    if mgf.mgf.to_id_string() != OID_MGF1 || Hash::from_oid(&mgf_hash) != Some(hash) {
        return Err(SigError::Unsupported(format!(
            "RSA-PSS mask generation {} with {mgf_hash} (only MGF1 with the message hash)",
            mgf.mgf.to_id_string()
        )));
    }
    if params.trailer_field() != 1 {
        return Err(SigError::Invalid("RSA-PSS trailer field is not 1".into()));
    }
    let salt_len = usize::try_from(params.salt_length())
        .map_err(|_| SigError::Invalid("RSA-PSS salt length".into()))?;
    Ok(Scheme::Pss { hash, salt_len })
}

/// The signature scheme of `cert`, for reporting.
pub(crate) fn describe(cert: &CertInfo) -> Option<SignatureScheme> {
    Some(match scheme_of(cert).ok()? {
        Scheme::Pkcs1(h) => SignatureScheme::RsaPkcs1(h.into()),
        Scheme::Pss { hash, salt_len } => {
            SignatureScheme::RsaPss(hash.into(), u32::try_from(salt_len).unwrap_or(u32::MAX))
        }
        Scheme::Ecdsa(h) => SignatureScheme::Ecdsa(h.into()),
    })
}

/// Checks that `issuer`'s key signed `cert`.
pub(crate) fn verify_signed_by(cert: &CertInfo, issuer: &CertInfo) -> Result<(), SigError> {
    let scheme = scheme_of(cert)?;
    match scheme {
        Scheme::Pkcs1(hash) => {
            let key = rsa_key(issuer)?;
            let digest = hash.digest(&cert.tbs);
            key.verify(hash.pkcs1v15(), &digest, &cert.signature)
                .map_err(|e| SigError::Invalid(format!("RSA PKCS#1 v1.5: {e}")))
        }
        Scheme::Pss { hash, salt_len } => {
            let key = rsa_key(issuer)?;
            let digest = hash.digest(&cert.tbs);
            key.verify(hash.pss(salt_len), &digest, &cert.signature)
                .map_err(|e| SigError::Invalid(format!("RSA-PSS: {e}")))
        }
        Scheme::Ecdsa(hash) => {
            if issuer.spki_alg != OID_EC_PUBLIC_KEY {
                return Err(SigError::BadKey(format!(
                    "ECDSA signature but issuer key is {}",
                    issuer.spki_alg
                )));
            }
            let digest = hash.digest(&cert.tbs);
            ecdsa_verify(issuer, &digest, &cert.signature)
        }
    }
}

fn rsa_key(issuer: &CertInfo) -> Result<RsaPublicKey, SigError> {
    if issuer.spki_alg != OID_RSA_ENCRYPTION && issuer.spki_alg != OID_RSASSA_PSS {
        return Err(SigError::BadKey(format!(
            "RSA signature but issuer key is {}",
            issuer.spki_alg
        )));
    }
    RsaPublicKey::from_pkcs1_der(&issuer.public_key)
        .map_err(|e| SigError::BadKey(format!("RSA public key: {e}")))
}

fn ecdsa_verify(issuer: &CertInfo, digest: &[u8], sig_der: &[u8]) -> Result<(), SigError> {
    use ecdsa::signature::hazmat::PrehashVerifier;
    let invalid = |e: ecdsa::Error| SigError::Invalid(format!("ECDSA: {e}"));
    let bad_key = |e: ecdsa::Error| SigError::BadKey(format!("EC public key: {e}"));
    match issuer.spki_curve.as_deref() {
        Some(OID_P256) => {
            let key =
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&issuer.public_key).map_err(bad_key)?;
            let sig = p256::ecdsa::Signature::from_der(sig_der).map_err(invalid)?;
            key.verify_prehash(digest, &sig).map_err(invalid)
        }
        Some(OID_P384) => {
            let key =
                p384::ecdsa::VerifyingKey::from_sec1_bytes(&issuer.public_key).map_err(bad_key)?;
            let sig = p384::ecdsa::Signature::from_der(sig_der).map_err(invalid)?;
            key.verify_prehash(digest, &sig).map_err(invalid)
        }
        Some(OID_P521) => {
            let key =
                p521::ecdsa::VerifyingKey::from_sec1_bytes(&issuer.public_key).map_err(bad_key)?;
            let sig = p521::ecdsa::Signature::from_der(sig_der).map_err(invalid)?;
            key.verify_prehash(digest, &sig).map_err(invalid)
        }
        other => Err(SigError::Unsupported(format!(
            "EC curve {}",
            other.unwrap_or("<missing>")
        ))),
    }
}
