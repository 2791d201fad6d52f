//! Key templates: the TCG EK Credential Profile default EK templates (low range, L-1 and
//! L-2) and the AK template `tpm2_createak` uses, all as `TPMT_PUBLIC` bytes.

use crate::alg::{EkAlg, HashAlg, SignAlg, id};
use crate::marshal::Writer;
use crate::public::attr;

/// The EK authorization policy "A" for SHA-256 EKs: `PolicySecret(TPM_RH_ENDORSEMENT)`.
pub const EK_POLICY_A_SHA256: [u8; 32] = [
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
    0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA,
];

/// EK attributes: fixedTPM, fixedParent, sensitiveDataOrigin, adminWithPolicy, restricted,
/// decrypt.
pub const EK_ATTRIBUTES: u32 = attr::FIXED_TPM
    | attr::FIXED_PARENT
    | attr::SENSITIVE_DATA_ORIGIN
    | attr::ADMIN_WITH_POLICY
    | attr::RESTRICTED
    | attr::DECRYPT;

/// AK attributes as `tpm2_createak` sets them: fixedTPM, fixedParent, sensitiveDataOrigin,
/// userWithAuth, restricted, sign.
pub const AK_ATTRIBUTES: u32 = attr::FIXED_TPM
    | attr::FIXED_PARENT
    | attr::SENSITIVE_DATA_ORIGIN
    | attr::USER_WITH_AUTH
    | attr::RESTRICTED
    | attr::SIGN_ENCRYPT;

const AES_128_CFB: (u16, u16, u16) = (id::AES, 128, id::CFB);

/// `TPMT_PUBLIC` of an RSA key.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rsa_tpmt(
    name_alg: HashAlg,
    attributes: u32,
    policy: &[u8],
    symmetric: Option<(u16, u16, u16)>,
    scheme: Option<(u16, HashAlg)>,
    bits: u16,
    modulus: &[u8],
) -> Vec<u8> {
    let mut w = Writer::new();
    w.u16(id::RSA)
        .u16(name_alg.tpm_id())
        .u32(attributes)
        .tpm2b(policy);
    write_sym(&mut w, symmetric);
    write_scheme(&mut w, scheme);
    w.u16(bits).u32(0).tpm2b(modulus);
    w.into_vec()
}

/// `TPMT_PUBLIC` of an ECC key (KDF scheme NULL).
#[allow(clippy::too_many_arguments)]
pub(crate) fn ecc_tpmt(
    name_alg: HashAlg,
    attributes: u32,
    policy: &[u8],
    symmetric: Option<(u16, u16, u16)>,
    scheme: Option<(u16, HashAlg)>,
    curve: u16,
    x: &[u8],
    y: &[u8],
) -> Vec<u8> {
    let mut w = Writer::new();
    w.u16(id::ECC)
        .u16(name_alg.tpm_id())
        .u32(attributes)
        .tpm2b(policy);
    write_sym(&mut w, symmetric);
    write_scheme(&mut w, scheme);
    w.u16(curve).u16(id::NULL).tpm2b(x).tpm2b(y);
    w.into_vec()
}

fn write_sym(w: &mut Writer, symmetric: Option<(u16, u16, u16)>) {
    match symmetric {
        Some((alg, bits, mode)) => w.u16(alg).u16(bits).u16(mode),
        None => w.u16(id::NULL),
    };
}

fn write_scheme(w: &mut Writer, scheme: Option<(u16, HashAlg)>) {
    match scheme {
        Some((alg, hash)) => w.u16(alg).u16(hash.tpm_id()),
        None => w.u16(id::NULL),
    };
}

/// The default EK template (`TPMT_PUBLIC`) for `alg`, with the profile's zero-filled unique
/// field.
pub fn ek_template(alg: EkAlg) -> Vec<u8> {
    match alg {
        EkAlg::Rsa2048 => ek_rsa_with_unique(&[0u8; 256]),
        EkAlg::EccP256 => ek_ecc_with_unique(&[0u8; 32], &[0u8; 32]),
    }
}

/// The RSA EK template with a given modulus in `unique` (a TPM's EK public is exactly this).
pub fn ek_rsa_with_unique(modulus: &[u8]) -> Vec<u8> {
    rsa_tpmt(
        HashAlg::Sha256,
        EK_ATTRIBUTES,
        &EK_POLICY_A_SHA256,
        Some(AES_128_CFB),
        None,
        2048,
        modulus,
    )
}

/// The ECC P-256 EK template with a given point in `unique`.
pub fn ek_ecc_with_unique(x: &[u8], y: &[u8]) -> Vec<u8> {
    ecc_tpmt(
        HashAlg::Sha256,
        EK_ATTRIBUTES,
        &EK_POLICY_A_SHA256,
        Some(AES_128_CFB),
        None,
        3,
        x,
        y,
    )
}

/// The AK template `tpm2_createak -G rsa|ecc -g <hash> -s <scheme>` uses: RSA-2048 for
/// RSASSA/RSAPSS, NIST P-256 for ECDSA; `hash` is both the name and the scheme hash.
pub fn ak_template(hash: HashAlg, sign: SignAlg) -> Vec<u8> {
    let scheme = Some((sign.tpm_id(), hash));
    if sign.is_rsa() {
        rsa_tpmt(hash, AK_ATTRIBUTES, &[], None, scheme, 2048, &[])
    } else {
        ak_ecc_with_unique(hash, &[], &[])
    }
}

/// The ECDSA P-256 AK of [`ak_template`] with a given point in `unique` (the public area
/// of such an AK; software AKs in tests and fuzzing are built with it).
pub fn ak_ecc_with_unique(hash: HashAlg, x: &[u8], y: &[u8]) -> Vec<u8> {
    let scheme = Some((SignAlg::Ecdsa.tpm_id(), hash));
    ecc_tpmt(hash, AK_ATTRIBUTES, &[], None, scheme, 3, x, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::public::{Public, PublicKey};

    #[test]
    fn policy_a_is_policy_secret_endorsement() {
        // PolicySecret: H(H(0^32 || TPM_CC_PolicySecret || name(TPM_RH_ENDORSEMENT)) || policyRef)
        let h = HashAlg::Sha256;
        let step1 = h.digest_parts(&[
            &[0u8; 32],
            &0x151u32.to_be_bytes(),
            &0x4000_000Bu32.to_be_bytes(),
        ]);
        let step2 = h.digest(&step1);
        assert_eq!(step2, EK_POLICY_A_SHA256);
    }

    #[test]
    fn templates_parse() {
        let ek = Public::from_tpmt(&ek_template(EkAlg::Rsa2048)).unwrap();
        assert_eq!(ek.object_attributes, 0x0003_00B2);
        assert!(matches!(ek.key, PublicKey::Rsa { bits: 2048, .. }));
        let ek = Public::from_tpmt(&ek_template(EkAlg::EccP256)).unwrap();
        assert_eq!(ek.symmetric.map(|s| s.key_bits), Some(128));
        let ak = Public::from_tpmt(&ak_template(HashAlg::Sha256, SignAlg::Ecdsa)).unwrap();
        assert_eq!(ak.object_attributes, 0x0005_0072);
        assert_eq!(ak.scheme.and_then(|s| s.sign_alg()), Some(SignAlg::Ecdsa));
        let ak = Public::from_tpmt(&ak_ecc_with_unique(HashAlg::Sha256, &[1; 32], &[2; 32]));
        assert!(
            matches!(ak.unwrap().key, PublicKey::Ecc { ref x, ref y, .. } if x == &[1; 32] && y == &[2; 32])
        );
    }
}
