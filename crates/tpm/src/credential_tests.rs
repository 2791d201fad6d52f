//! MakeCredential checked by unwrapping it in software with the EK private key, the way a
//! TPM's ActivateCredential does (the swtpm round trip in `tests/` is the real proof).

use cfb_mode::cipher::{AsyncStreamCipher, KeyIvInit};
use elliptic_curve::sec1::ToEncodedPoint;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rsa::traits::PublicKeyParts;

use super::*;
use crate::templates;

const CREDENTIAL: &[u8] = b"abcdefghijklmnopqrstuvwxyz012345";

fn ak_name() -> Vec<u8> {
    let mut n = vec![0x00, 0x0B];
    n.extend([0x5A; 32]);
    n
}

/// Check the HMAC and decrypt the identity given the seed, as ActivateCredential does.
fn unwrap_with_seed(h: HashAlg, seed: &[u8], name: &[u8], blob: &CredentialBlob) -> Vec<u8> {
    let mut r = Reader::new(&blob.id_object, "id");
    let outer = r.tpm2b(64).unwrap().to_vec();
    let enc = r.rest().to_vec();
    let hmac_key = kdfa(h, seed, "INTEGRITY", &[], &[], (h.digest_len() * 8) as u32);
    assert_eq!(outer, hmac(h, &hmac_key, &[&enc, name]), "outer HMAC");
    let sym = kdfa(h, seed, "STORAGE", name, &[], 128);
    let mut plain = enc.clone();
    cfb_mode::Decryptor::<aes::Aes128>::new_from_slices(&sym, &[0u8; 16])
        .unwrap()
        .decrypt(&mut plain);
    let mut r = Reader::new(&plain, "plain");
    let cred = r.tpm2b(64).unwrap().to_vec();
    r.finish().unwrap();
    cred
}

#[test]
fn rsa_ek_credential_unwraps_with_private_key() {
    let mut rng = StdRng::seed_from_u64(1);
    let sk = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let modulus = sk.n().to_bytes_be();
    let ek = Public::from_tpmt(&templates::ek_rsa_with_unique(&modulus)).unwrap();

    let blob = make_credential_with_rng(&ek, &ak_name(), CREDENTIAL, &mut StdRng::seed_from_u64(9))
        .unwrap();
    assert_eq!(blob.id_object.len(), 68);
    assert_eq!(blob.encrypted_secret.len(), 256);
    let again =
        make_credential_with_rng(&ek, &ak_name(), CREDENTIAL, &mut StdRng::seed_from_u64(9))
            .unwrap();
    assert_eq!(blob, again, "deterministic given the RNG");

    let seed = sk
        .decrypt(
            rsa::Oaep::new_with_label::<sha2::Sha256, _>("IDENTITY\0"),
            &blob.encrypted_secret,
        )
        .unwrap();
    assert_eq!(seed.len(), 32);
    assert_eq!(
        unwrap_with_seed(HashAlg::Sha256, &seed, &ak_name(), &blob),
        CREDENTIAL
    );

    let file = blob.to_tpm2_tools();
    assert_eq!(file.len(), 336);
    assert_eq!(&file[..4], &[0xBA, 0xDC, 0xC0, 0xDE]);
    assert_eq!(CredentialBlob::from_tpm2_tools(&file).unwrap(), blob);
}

#[test]
fn ecc_ek_credential_unwraps_with_private_key() {
    let sk = p256::SecretKey::random(&mut StdRng::seed_from_u64(2));
    let pt = sk.public_key().to_encoded_point(false);
    let ek = Public::from_tpmt(&templates::ek_ecc_with_unique(
        pt.x().unwrap(),
        pt.y().unwrap(),
    ))
    .unwrap();

    let blob = make_credential_with_rng(&ek, &ak_name(), CREDENTIAL, &mut StdRng::seed_from_u64(3))
        .unwrap();
    assert_eq!(blob.encrypted_secret.len(), 68);
    let mut r = Reader::new(&blob.encrypted_secret, "point");
    let ex = r.tpm2b(66).unwrap().to_vec();
    let ey = r.tpm2b(66).unwrap().to_vec();
    r.finish().unwrap();
    let mut sec1 = vec![4];
    sec1.extend(&ex);
    sec1.extend(&ey);
    let eph = p256::PublicKey::from_sec1_bytes(&sec1).unwrap();
    let z = elliptic_curve::ecdh::diffie_hellman(sk.to_nonzero_scalar(), eph.as_affine());
    let seed = kdfe(
        HashAlg::Sha256,
        z.raw_secret_bytes(),
        "IDENTITY",
        &ex,
        pt.x().unwrap(),
        256,
    );
    assert_eq!(
        unwrap_with_seed(HashAlg::Sha256, &seed, &ak_name(), &blob),
        CREDENTIAL
    );
}

#[test]
fn rejects_bad_inputs() {
    let ek = Public::from_tpmt(&templates::ak_template(
        HashAlg::Sha256,
        crate::alg::SignAlg::RsaSsa,
    ))
    .unwrap();
    // An AK has no symmetric algorithm: not a storage key.
    assert!(matches!(
        make_credential(&ek, &ak_name(), CREDENTIAL),
        Err(TpmError::InvalidKey { .. })
    ));
    let ek = Public::from_tpmt(&templates::ek_template(crate::alg::EkAlg::Rsa2048)).unwrap();
    assert!(matches!(
        make_credential(&ek, &ak_name(), &[0u8; 33]),
        Err(TpmError::InvalidArgument(_))
    ));
    assert!(matches!(
        make_credential(&ek, &[0], CREDENTIAL),
        Err(TpmError::InvalidArgument(_))
    ));
}

#[test]
fn tpm2_tools_file_errors() {
    let blob = CredentialBlob {
        id_object: vec![1; 68],
        encrypted_secret: vec![2; 256],
    };
    let file = blob.to_tpm2_tools();
    for len in 0..file.len() {
        assert!(
            CredentialBlob::from_tpm2_tools(&file[..len]).is_err(),
            "accepted {len} bytes"
        );
    }
    let mut bad = file.clone();
    bad[0] = 0;
    assert!(matches!(
        CredentialBlob::from_tpm2_tools(&bad),
        Err(TpmError::BadValue { field: "magic", .. })
    ));
    let mut bad = file.clone();
    bad[7] = 2;
    assert!(matches!(
        CredentialBlob::from_tpm2_tools(&bad),
        Err(TpmError::BadValue {
            field: "version",
            ..
        })
    ));
    let mut long = file;
    long.push(0);
    assert!(matches!(
        CredentialBlob::from_tpm2_tools(&long),
        Err(TpmError::TrailingBytes { offset: 336, .. })
    ));
}
