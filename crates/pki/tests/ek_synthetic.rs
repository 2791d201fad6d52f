//! EK chain building with certificates made here: intermediates passed in,
//! non-CA intermediates, RSA-PSS signatures, unknown CAs.

use keylime_pki::{
    CaOptions, CertOrigin, CertRole, CertificateAuthority, EkCertStore, EkVerifyOptions,
    KeyAlgorithm, PkiError, SignatureScheme,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

fn der_of(pem: &str) -> Vec<u8> {
    keylime_pki::pem_or_der_to_der_list(pem.as_bytes())
        .unwrap()
        .remove(0)
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p
}

fn leaf_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p
}

#[test]
fn cert_from_unknown_ca_fails_with_clear_error() {
    let opts = CaOptions {
        key_algorithm: KeyAlgorithm::EcdsaP256,
        cert_ca_name: "Rogue TPM CA".into(),
        ..Default::default()
    };
    let ca = CertificateAuthority::generate(&opts).unwrap();
    let fake_ek = ca.issue(CertRole::Client, "fake-ek", &[]).unwrap();
    let store = EkCertStore::load(&keylime_testkit::testdata("certs/tpm_cert_store")).unwrap();
    let err = store.verify(&der_of(&fake_ek.cert_pem)).unwrap_err();
    assert!(matches!(err, PkiError::UnknownIssuer { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("Rogue TPM CA") && msg.contains("fake-ek"),
        "{msg}"
    );
}

#[test]
fn same_name_ca_with_other_key_is_a_bad_signature() {
    let real_key = KeyPair::generate().unwrap();
    let real_ca = ca_params("Vendor CA").self_signed(&real_key).unwrap();
    let evil_key = KeyPair::generate().unwrap();
    let evil_ca = ca_params("Vendor CA").self_signed(&evil_key).unwrap();
    let ek_key = KeyPair::generate().unwrap();
    let ek = leaf_params("ek")
        .signed_by(&ek_key, &evil_ca, &evil_key)
        .unwrap();
    let store = EkCertStore::from_ders([("vendor.pem", real_ca.der().as_ref())]).unwrap();
    let err = store.verify(ek.der()).unwrap_err();
    match err {
        PkiError::BadSignature { source_name, .. } => assert_eq!(source_name, "vendor.pem"),
        other => panic!("expected BadSignature, got {other}"),
    }
}

#[test]
fn chain_through_passed_intermediates_and_non_ca_rejection() {
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let root = ca_params("Root").self_signed(&root_key).unwrap();
    let mid_key = KeyPair::generate().unwrap();
    let mid = ca_params("Mid")
        .signed_by(&mid_key, &root, &root_key)
        .unwrap();
    let ek_key = KeyPair::generate().unwrap();
    let ek = leaf_params("ek")
        .signed_by(&ek_key, &mid, &mid_key)
        .unwrap();

    let store = EkCertStore::from_ders([("root.pem", root.der().as_ref())]).unwrap();
    assert!(matches!(
        store.verify(ek.der()).unwrap_err(),
        PkiError::UnknownIssuer { .. }
    ));
    let opts = EkVerifyOptions {
        intermediates: vec![mid.der().to_vec()],
        ..Default::default()
    };
    let v = store.verify_with(ek.der(), &opts).unwrap();
    assert_eq!(v.chain.len(), 3);
    assert_eq!(v.chain[1].origin, CertOrigin::Intermediate(0));
    assert_eq!(v.anchor, "root.pem");
    assert!(v.reaches_root);
    assert!(v.warnings.is_empty());

    // A leaf (not a CA) under the root cannot act as an intermediate.
    let mut not_ca = leaf_params("Mid");
    not_ca.is_ca = IsCa::ExplicitNoCa;
    let not_ca_key = KeyPair::generate().unwrap();
    let not_ca = not_ca.signed_by(&not_ca_key, &root, &root_key).unwrap();
    let forged = leaf_params("ek")
        .signed_by(&ek_key, &not_ca, &not_ca_key)
        .unwrap();
    let opts = EkVerifyOptions {
        intermediates: vec![not_ca.der().to_vec()],
        ..Default::default()
    };
    let err = store.verify_with(forged.der(), &opts).unwrap_err();
    assert!(matches!(err, PkiError::IssuerNotCa { .. }), "{err}");
}

fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        vec![len as u8]
    } else if len < 0x100 {
        vec![0x81, len as u8]
    } else {
        vec![0x82, (len >> 8) as u8, len as u8]
    }
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

/// AlgorithmIdentifier for RSASSA-PSS, SHA-256, MGF1-SHA-256, salt length 32.
const PSS_SHA256_ALG_ID: &[u8] = &[
    0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34, 0xa0,
    0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30,
    0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03,
    0x02, 0x01, 0x20,
];

#[test]
fn rsa_pss_signed_ek_cert_verifies() {
    // rcgen cannot sign with PSS, so re-sign the TBS of an rcgen certificate
    // with RustCrypto and assemble the certificate by hand.
    use rsa::pkcs8::EncodePrivateKey;
    use sha2::Digest;
    let rsa_key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let der = rsa_key.to_pkcs8_der().unwrap();
    let ca_key = KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_bytes()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .unwrap();
    let ca = ca_params("PSS CA").self_signed(&ca_key).unwrap();
    let ek_key = KeyPair::generate().unwrap();
    let ek = leaf_params("ek").signed_by(&ek_key, &ca, &ca_key).unwrap();
    let (_, parsed) =
        <x509_parser::certificate::X509Certificate as x509_parser::prelude::FromDer<_>>::from_der(
            ek.der(),
        )
        .unwrap();
    let tbs = parsed.tbs_certificate.as_ref().to_vec();
    let digest = sha2::Sha256::digest(&tbs);
    let sig = rsa_key
        .sign_with_rng(
            &mut rand::rngs::OsRng,
            rsa::Pss::new::<sha2::Sha256>(),
            &digest,
        )
        .unwrap();
    let assemble = |sig: &[u8]| {
        let mut bits = vec![0u8];
        bits.extend_from_slice(sig);
        let mut body = tbs.clone();
        body.extend_from_slice(PSS_SHA256_ALG_ID);
        body.extend(der_tlv(0x03, &bits));
        der_tlv(0x30, &body)
    };

    let store = EkCertStore::from_ders([("pss.pem", ca.der().as_ref())]).unwrap();
    let v = store.verify(&assemble(&sig)).unwrap();
    assert_eq!(
        v.chain[0].signature,
        Some(SignatureScheme::RsaPss(keylime_pki::HashName::Sha256, 32))
    );
    // Flip one signature bit: must fail.
    let mut bad = sig.clone();
    bad[100] ^= 0x10;
    assert!(matches!(
        store.verify(&assemble(&bad)).unwrap_err(),
        PkiError::BadSignature { .. }
    ));
}

#[test]
fn spki_extraction_matches_key() {
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params("ek").self_signed(&key).unwrap();
    assert_eq!(
        keylime_pki::ek_cert_public_key_spki(cert.der()).unwrap(),
        key.public_key_der()
    );
}

#[test]
fn pem_bundle_b64_and_der_inputs() {
    use base64::Engine;
    let k = KeyPair::generate().unwrap();
    let a = leaf_params("a").self_signed(&k).unwrap();
    let b = leaf_params("b").self_signed(&k).unwrap();
    let bundle = format!("some text\n{}\nmore\n{}", a.pem(), b.pem());
    let list = keylime_pki::pem_or_der_to_der_list(bundle.as_bytes()).unwrap();
    assert_eq!(list, vec![a.der().to_vec(), b.der().to_vec()]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(a.der());
    assert_eq!(
        keylime_pki::pem_or_der_to_der_list(format!(" {b64}\n").as_bytes()).unwrap(),
        vec![a.der().to_vec()]
    );
    let mut padded = a.der().to_vec();
    padded.extend_from_slice(&[0xff; 40]);
    assert_eq!(
        keylime_pki::pem_or_der_to_der_list(&padded).unwrap(),
        vec![a.der().to_vec()]
    );
}

#[test]
fn chain_building_backtracks_over_cross_signed_intermediates() {
    // The same intermediate (name and key) exists twice: issued by a root that
    // is not in the store (listed first, a dead end) and by the store's root.
    let store_root_key = KeyPair::generate().unwrap();
    let store_root = ca_params("Store Root")
        .self_signed(&store_root_key)
        .unwrap();
    let other_root_key = KeyPair::generate().unwrap();
    let other_root = ca_params("Other Root")
        .self_signed(&other_root_key)
        .unwrap();
    let mid_key = KeyPair::generate().unwrap();
    let mid_dead_end = ca_params("Mid")
        .signed_by(&mid_key, &other_root, &other_root_key)
        .unwrap();
    let mid_good = ca_params("Mid")
        .signed_by(&mid_key, &store_root, &store_root_key)
        .unwrap();
    let ek_key = KeyPair::generate().unwrap();
    let ek = leaf_params("ek")
        .signed_by(&ek_key, &mid_good, &mid_key)
        .unwrap();

    let store = EkCertStore::from_ders([("root.pem", store_root.der().as_ref())]).unwrap();
    let opts = EkVerifyOptions {
        intermediates: vec![mid_dead_end.der().to_vec(), mid_good.der().to_vec()],
        ..Default::default()
    };
    let v = store.verify_with(ek.der(), &opts).unwrap();
    assert_eq!(v.chain[1].origin, CertOrigin::Intermediate(1));
    assert_eq!(v.anchor, "root.pem");

    // Only the dead end: unknown issuer, naming the missing root.
    let opts = EkVerifyOptions {
        intermediates: vec![mid_dead_end.der().to_vec()],
        ..Default::default()
    };
    let err = store.verify_with(ek.der(), &opts).unwrap_err();
    assert!(err.to_string().contains("Other Root"), "{err}");
}
