//! Software `TPM2_MakeCredential`: wrap a credential so that only the TPM holding a given EK
//! can recover it, and only for a key with the given name (TPM 2.0 Part 1, 24.4; the byte
//! layout is in PROTOCOL.md §3). Also the tpm2-tools `makecredential` file format that
//! Keylime's registrar returns as `blob`.

use cfb_mode::cipher::{AsyncStreamCipher, KeyIvInit};
use elliptic_curve::sec1::{FromEncodedPoint, ModulusSize, ToEncodedPoint};
use elliptic_curve::{AffinePoint, CurveArithmetic, FieldBytesSize, NonZeroScalar};
use rand::CryptoRng;
use rand::RngCore;

use crate::alg::{HashAlg, id};
use crate::error::{Result, TpmError};
use crate::kdf::{hmac, kdfa, kdfe};
use crate::marshal::{Reader, Writer};
use crate::public::{Public, PublicKey};
use crate::spki::EcKey;

/// Magic number opening a tpm2-tools credential file.
pub const TPM2_TOOLS_MAGIC: u32 = 0xBADC_C0DE;
const MAX_ID_OBJECT: usize = 1024;
const MAX_ENCRYPTED_SECRET: usize = 1024;
/// Largest AK name accepted: nameAlg plus a SHA-512 digest.
const MAX_NAME: usize = 2 + 64;

/// The two outputs of MakeCredential, each the *content* of its TPM2B.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialBlob {
    /// `TPM2B_ID_OBJECT` content: `u16 hmacSize || outerHMAC || encIdentity`.
    pub id_object: Vec<u8>,
    /// `TPM2B_ENCRYPTED_SECRET` content: the RSA-OAEP-encrypted seed, or the ephemeral ECC
    /// point.
    pub encrypted_secret: Vec<u8>,
}

impl CredentialBlob {
    /// tpm2-tools `makecredential` output: magic, version 1, then both TPM2Bs.
    pub fn to_tpm2_tools(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(TPM2_TOOLS_MAGIC).u32(1);
        w.tpm2b(&self.id_object).tpm2b(&self.encrypted_secret);
        w.into_vec()
    }

    /// Parse a tpm2-tools `makecredential` file; the whole input must be consumed.
    pub fn from_tpm2_tools(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new(b, "tpm2-tools credential blob");
        let magic = r.u32()?;
        if magic != TPM2_TOOLS_MAGIC {
            return Err(r.bad_value("magic", 0, magic));
        }
        let version = r.u32()?;
        if version != 1 {
            return Err(r.bad_value("version", 4, version));
        }
        r.structure = "TPM2B_ID_OBJECT";
        let id_object = r.tpm2b(MAX_ID_OBJECT)?.to_vec();
        r.structure = "TPM2B_ENCRYPTED_SECRET";
        let encrypted_secret = r.tpm2b(MAX_ENCRYPTED_SECRET)?.to_vec();
        r.finish()?;
        Ok(CredentialBlob {
            id_object,
            encrypted_secret,
        })
    }
}

/// MakeCredential with the operating system's RNG. `ak_name` is the name of the key the
/// credential is bound to ([`Public::name`]); `credential` at most the EK name-alg digest size.
pub fn make_credential(ek: &Public, ak_name: &[u8], credential: &[u8]) -> Result<CredentialBlob> {
    make_credential_with_rng(ek, ak_name, credential, &mut rand::rngs::OsRng)
}

/// MakeCredential with an injected RNG (for reproducible tests).
pub fn make_credential_with_rng<R: RngCore + CryptoRng>(
    ek: &Public,
    ak_name: &[u8],
    credential: &[u8],
    rng: &mut R,
) -> Result<CredentialBlob> {
    let h = ek.name_alg;
    if credential.len() > h.digest_len() {
        return Err(TpmError::InvalidArgument(format!(
            "credential of {} bytes is longer than the EK name digest ({} bytes)",
            credential.len(),
            h.digest_len()
        )));
    }
    if ak_name.len() < 2 || ak_name.len() > MAX_NAME {
        return Err(TpmError::InvalidArgument(format!(
            "object name of {} bytes is not a TPM name",
            ak_name.len()
        )));
    }
    let sym_bits = match ek.symmetric {
        Some(s)
            if s.alg == id::AES && s.mode == id::CFB && matches!(s.key_bits, 128 | 192 | 256) =>
        {
            s.key_bits
        }
        Some(s) => {
            return Err(TpmError::UnsupportedAlgorithm {
                what: "EK symmetric (need AES-CFB)",
                alg: s.alg,
            });
        }
        None => {
            return Err(TpmError::InvalidKey {
                what: "EK",
                reason: "not a storage key: symmetric algorithm is NULL".into(),
            });
        }
    };

    let (seed, encrypted_secret) = match &ek.key {
        PublicKey::Rsa { .. } => rsa_seed(ek, h, rng)?,
        PublicKey::Ecc { .. } => match ek.ec_key()? {
            EcKey::P256(k) => ecdh_seed(&k, h, rng),
            EcKey::P384(k) => ecdh_seed(&k, h, rng),
            EcKey::P521(k) => ecdh_seed(&k, h, rng),
        },
    };

    let sym_key = kdfa(h, &seed, "STORAGE", ak_name, &[], sym_bits.into());
    let mut enc_identity = Writer::new();
    enc_identity.tpm2b(credential);
    let mut enc_identity = enc_identity.into_vec();
    aes_cfb_encrypt(&sym_key, &mut enc_identity)?;

    let hmac_key = kdfa(h, &seed, "INTEGRITY", &[], &[], (h.digest_len() * 8) as u32);
    let outer_hmac = hmac(h, &hmac_key, &[&enc_identity, ak_name]);
    let mut id_object = Writer::new();
    id_object.tpm2b(&outer_hmac).bytes(&enc_identity);
    Ok(CredentialBlob {
        id_object: id_object.into_vec(),
        encrypted_secret,
    })
}

/// AES-CFB128 with an all-zero IV, as MakeCredential uses for the identity.
pub(crate) fn aes_cfb_encrypt(key: &[u8], buf: &mut [u8]) -> Result<()> {
    let iv = [0u8; 16];
    let bad = |e: cfb_mode::cipher::InvalidLength| TpmError::Crypto {
        operation: "AES-CFB key setup",
        reason: e.to_string(),
    };
    match key.len() {
        16 => cfb_mode::Encryptor::<aes::Aes128>::new_from_slices(key, &iv)
            .map_err(bad)?
            .encrypt(buf),
        24 => cfb_mode::Encryptor::<aes::Aes192>::new_from_slices(key, &iv)
            .map_err(bad)?
            .encrypt(buf),
        32 => cfb_mode::Encryptor::<aes::Aes256>::new_from_slices(key, &iv)
            .map_err(bad)?
            .encrypt(buf),
        n => {
            return Err(TpmError::Crypto {
                operation: "AES-CFB key setup",
                reason: format!("key of {n} bytes"),
            });
        }
    }
    Ok(())
}

fn rsa_seed<R: RngCore + CryptoRng>(
    ek: &Public,
    h: HashAlg,
    rng: &mut R,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let key = ek.rsa_key()?;
    let mut seed = vec![0u8; h.digest_len()];
    rng.fill_bytes(&mut seed);
    const LABEL: &str = "IDENTITY\0";
    let padding = match h {
        HashAlg::Sha1 => rsa::Oaep::new_with_label::<sha1::Sha1, _>(LABEL),
        HashAlg::Sha256 => rsa::Oaep::new_with_label::<sha2::Sha256, _>(LABEL),
        HashAlg::Sha384 => rsa::Oaep::new_with_label::<sha2::Sha384, _>(LABEL),
        HashAlg::Sha512 => rsa::Oaep::new_with_label::<sha2::Sha512, _>(LABEL),
        HashAlg::Sm3_256 => rsa::Oaep::new_with_label::<sm3::Sm3, _>(LABEL),
    };
    let secret = key
        .encrypt(rng, padding, &seed)
        .map_err(|e| TpmError::Crypto {
            operation: "RSA-OAEP encryption of the seed",
            reason: e.to_string(),
        })?;
    Ok((seed, secret))
}

fn ecdh_seed<C, R>(ek: &elliptic_curve::PublicKey<C>, h: HashAlg, rng: &mut R) -> (Vec<u8>, Vec<u8>)
where
    C: CurveArithmetic,
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
    R: RngCore + CryptoRng,
{
    let ephemeral = NonZeroScalar::<C>::random(rng);
    let ephemeral_pub = elliptic_curve::PublicKey::<C>::from_secret_scalar(&ephemeral);
    let shared = elliptic_curve::ecdh::diffie_hellman(ephemeral, ek.as_affine());
    let eph = ephemeral_pub.to_encoded_point(false);
    let ekp = ek.to_encoded_point(false);
    // Uncompressed, non-identity points always carry both coordinates.
    let (ex, ey) = (eph.x().map(|x| x.to_vec()), eph.y().map(|y| y.to_vec()));
    let (ex, ey) = (ex.unwrap_or_default(), ey.unwrap_or_default());
    let kx = ekp.x().map(|x| x.to_vec()).unwrap_or_default();
    let z = shared.raw_secret_bytes();
    let seed = kdfe(h, z, "IDENTITY", &ex, &kx, (h.digest_len() * 8) as u32);
    let mut point = Writer::new();
    point.tpm2b(&ex).tpm2b(&ey);
    (seed, point.into_vec())
}

#[cfg(test)]
#[path = "credential_tests.rs"]
mod tests;
