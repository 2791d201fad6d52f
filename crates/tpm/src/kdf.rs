//! TPM key derivation: KDFa (SP 800-108 counter mode with HMAC) and KDFe (SP 800-56A
//! concatenation KDF), plus the HMAC both MakeCredential and KDFa use.

use hmac::{Hmac, Mac};

use crate::alg::HashAlg;

/// HMAC of the concatenation of `parts` under `key`.
pub fn hmac(hash: HashAlg, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        // HMAC accepts keys of any length; new_from_slice cannot fail for it.
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }
    match hash {
        HashAlg::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        HashAlg::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        HashAlg::Sha384 => run::<Hmac<sha2::Sha384>>(key, parts),
        HashAlg::Sha512 => run::<Hmac<sha2::Sha512>>(key, parts),
        HashAlg::Sm3_256 => run::<Hmac<sm3::Sm3>>(key, parts),
    }
}

/// Zero the unused high bits of the first byte when `bits` is not a whole number of bytes,
/// as the TPM does.
fn mask_to_bits(mut out: Vec<u8>, bits: u32) -> Vec<u8> {
    if !bits.is_multiple_of(8)
        && let Some(first) = out.first_mut()
    {
        *first &= (1u8 << (bits % 8)) - 1;
    }
    out
}

/// `KDFa(hash, key, label, contextU, contextV, bits)` (TPM 2.0 Part 1, 11.4.10.2):
/// `HMAC(key, counter_u32be || label || 0x00 || contextU || contextV || bits_u32be)` for
/// counter = 1, 2, ..., truncated to `bits`.
pub fn kdfa(
    hash: HashAlg,
    key: &[u8],
    label: &str,
    ctx_u: &[u8],
    ctx_v: &[u8],
    bits: u32,
) -> Vec<u8> {
    let len = bits.div_ceil(8) as usize;
    let mut out = Vec::with_capacity(len + hash.digest_len());
    let mut counter: u32 = 0;
    while out.len() < len {
        counter += 1;
        out.extend(hmac(
            hash,
            key,
            &[
                &counter.to_be_bytes(),
                label.as_bytes(),
                &[0],
                ctx_u,
                ctx_v,
                &bits.to_be_bytes(),
            ],
        ));
    }
    out.truncate(len);
    mask_to_bits(out, bits)
}

/// `KDFe(hash, Z, label, partyUInfo, partyVInfo, bits)` (TPM 2.0 Part 1, 11.4.10.3):
/// `H(counter_u32be || Z || label || 0x00 || partyU || partyV)` for counter = 1, 2, ...,
/// truncated to `bits`.
pub fn kdfe(
    hash: HashAlg,
    z: &[u8],
    label: &str,
    party_u: &[u8],
    party_v: &[u8],
    bits: u32,
) -> Vec<u8> {
    let len = bits.div_ceil(8) as usize;
    let mut out = Vec::with_capacity(len + hash.digest_len());
    let mut counter: u32 = 0;
    while out.len() < len {
        counter += 1;
        out.extend(hash.digest_parts(&[
            &counter.to_be_bytes(),
            z,
            label.as_bytes(),
            &[0],
            party_u,
            party_v,
        ]));
    }
    out.truncate(len);
    mask_to_bits(out, bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed independently with pyca/cryptography 48: KBKDFHMAC (counter
    // mode, counter before fixed data, r = l = 32 bits) and ConcatKDFHash.

    #[test]
    fn kdfa_storage_key_vector() {
        let seed: Vec<u8> = (0..32).collect();
        let mut name = vec![0x00, 0x0b];
        name.extend(100u8..132);
        assert_eq!(
            hex::encode(kdfa(HashAlg::Sha256, &seed, "STORAGE", &name, &[], 128)),
            "d98939313878365f823837e2ce0286ca"
        );
        assert_eq!(
            hex::encode(kdfa(HashAlg::Sha256, &seed, "INTEGRITY", &[], &[], 256)),
            "bacf689f634ece301e1f1b15b072d9c87db6a69585db42b1a0cb8f73ebe2692e"
        );
    }

    #[test]
    fn kdfa_multi_block_and_split_context() {
        // 360 bits needs two SHA-1 blocks; contextU/contextV concatenate.
        assert_eq!(
            hex::encode(kdfa(HashAlg::Sha1, b"key", "LABEL", b"u", b"v", 360)),
            "f20abc4b895a02c1b49fffc3451ff7ce2fafc073a2684f8adc8d44c490c41185694191aa924183436382eb1e04"
        );
    }

    #[test]
    fn kdfa_masks_partial_first_byte() {
        let full = kdfa(HashAlg::Sha256, b"k", "L", &[], &[], 12);
        assert_eq!(full.len(), 2);
        assert_eq!(full[0] & 0xF0, 0);
    }

    #[test]
    fn kdfe_vectors() {
        assert_eq!(
            hex::encode(kdfe(
                HashAlg::Sha256,
                &[3; 32],
                "IDENTITY",
                &[1; 32],
                &[2; 32],
                256
            )),
            "487e6bc56a261036ad8a075764c6cfec26749ba98169e919edbed3ae369f7c3f"
        );
        assert_eq!(
            hex::encode(kdfe(HashAlg::Sha384, b"zz", "IDENTITY", b"u", b"v", 480)),
            "fb451fd8292b9ca385817596fce296771bd6c41e724875d7d4d26fa80de595d3ab852a473b4230ed7f24ce7b8fdebaa348a15ab4aa0f656b17678635"
        );
    }
}
