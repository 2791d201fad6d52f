//! EK certificate validation with real vendor CAs and real EK certificates
//! from the shared test data (read in place).

use std::time::{Duration, UNIX_EPOCH};

use keylime_pki::{
    CertOrigin, EkCertStore, EkVerifyOptions, PkiError, ValidityPolicy, pem_or_der_to_der_list,
};
use keylime_testkit::testdata;

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(testdata(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

fn first_der(rel: &str) -> Vec<u8> {
    pem_or_der_to_der_list(&read(rel)).unwrap().remove(0)
}

fn tpm_cert_store() -> EkCertStore {
    EkCertStore::load(&testdata("certs/tpm_cert_store")).unwrap()
}

#[test]
fn upstream_tpm_cert_store_loads_every_file() {
    let dir = testdata("certs/tpm_cert_store");
    let files = std::fs::read_dir(&dir).unwrap().count();
    let store = tpm_cert_store();
    // Every file holds exactly one certificate (Alibaba and Nationz with text around it).
    assert_eq!(store.len(), files);
}

#[test]
fn st33_ecc_ek_cert_verifies_via_intermediate_in_store() {
    let store = tpm_cert_store();
    let verdict = store
        .verify(&read("certs/ek/stmicro/st33_ecc_ek_cert.der"))
        .unwrap();
    assert_eq!(verdict.anchor, "STM_ECC_01I.pem");
    assert_eq!(verdict.chain.first().unwrap().origin, CertOrigin::Presented);
    assert_eq!(
        verdict.chain.get(1).unwrap().origin,
        CertOrigin::Store("STM_ECC_01I.pem".into())
    );
}

#[test]
fn st33_rsa_ek_cert_with_nv_padding_verifies_up_to_the_root() {
    let store = tpm_cert_store();
    let der = read("certs/ek/stmicro/st33_rsa_ek_cert_with_trailing_ff.der");
    assert_eq!(der.len(), 1600, "test data changed");
    let verdict = store.verify(&der).unwrap();
    assert_eq!(verdict.anchor, "STM_RSA_05I.pem");
    assert!(verdict.reaches_root, "{verdict:?}");
    let origins: Vec<_> = verdict.chain.iter().map(|l| l.origin.clone()).collect();
    assert_eq!(
        origins,
        vec![
            CertOrigin::Presented,
            CertOrigin::Store("STM_RSA_05I.pem".into()),
            CertOrigin::Store("STM_RSA_RT.pem".into()),
            // STM's RSA root is cross-signed by GlobalSign's TPM root, also in the store.
            CertOrigin::Store("GS_TPM_RT.pem".into()),
        ]
    );
    // The EK cert has an empty subject.
    assert_eq!(verdict.chain.first().unwrap().subject, "<empty subject>");
}

#[test]
fn nuvoton_root_with_unsorted_rdn_set_parses_and_self_verifies() {
    let store = tpm_cert_store();
    let verdict = store
        .verify(&read(
            "certs/ek/nuvoton/nuvoton_tpm_root_ca_2110_noncanonical.der",
        ))
        .unwrap();
    assert_eq!(verdict.anchor, "NUVO_2110.pem");
    assert!(verdict.reaches_root);
}

#[test]
fn gce_ek_and_ak_certs_verify_against_google_cas() {
    let store = EkCertStore::load(&testdata("certs/gce-ca")).unwrap();
    assert_eq!(store.len(), 5);
    for (file, anchor) in [
        (
            "pca_tpm_ecc_enc_cert.pem",
            "gcp_ek_ak_ca_intermediate_v3.crt",
        ),
        (
            "pca_tpm_ecc_sign_cert.pem",
            "gcp_ek_ak_ca_intermediate_v3.crt",
        ),
        (
            "pca_tpm_rsa_enc_cert.pem",
            "gcp_ek_ak_ca_intermediate_v3.crt",
        ),
        (
            "pca_tpm_rsa_sign_cert.pem",
            "gcp_ek_ak_ca_intermediate_v3.crt",
        ),
        ("uca_tpm_ecc_enc_cert.pem", "tpm_ek_intermediate_3.crt"),
        ("uca_tpm_ecc_sign_cert.pem", "tpm_ek_intermediate_3.crt"),
        ("uca_tpm_rsa_enc_cert.pem", "tpm_ek_intermediate_3.crt"),
        ("uca_tpm_rsa_sign_cert.pem", "tpm_ek_intermediate_3.crt"),
    ] {
        let der = first_der(&format!("certs/ek/gce/{file}"));
        let verdict = store.verify(&der).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(verdict.anchor, anchor, "{file}");
        assert!(verdict.reaches_root, "{file}: {verdict:?}");
        assert_eq!(verdict.chain.len(), 3, "{file}");
    }
}

#[test]
fn gce_ek_cert_fails_against_vendor_store_with_unknown_issuer() {
    let der = first_der("certs/ek/gce/uca_tpm_rsa_enc_cert.pem");
    let err = tpm_cert_store().verify(&der).unwrap_err();
    assert!(matches!(err, PkiError::UnknownIssuer { .. }), "{err}");
    assert!(err.to_string().contains("does not chain"), "{err}");
}

#[test]
fn gce_ek_cert_chains_through_intermediate_passed_in() {
    // Store with only the root; the intermediate arrives like an NV chain cert.
    let root = read("certs/gce-ca/tpm_ek_root_1.cer");
    let store = EkCertStore::from_ders([("root", root.as_slice())]).unwrap();
    let ek = first_der("certs/ek/gce/uca_tpm_ecc_enc_cert.pem");
    assert!(matches!(
        store.verify(&ek).unwrap_err(),
        PkiError::UnknownIssuer { .. }
    ));
    let opts = EkVerifyOptions {
        intermediates: vec![
            read("certs/gce-ca/tpm_ek_intermediate_2.crt"),
            read("certs/gce-ca/tpm_ek_intermediate_3.crt"),
        ],
        ..Default::default()
    };
    let verdict = store.verify_with(&ek, &opts).unwrap();
    assert_eq!(
        verdict.chain.get(1).unwrap().origin,
        CertOrigin::Intermediate(1)
    );
    assert_eq!(verdict.anchor, "root");
}

#[test]
fn tampered_signature_is_rejected() {
    let mut der = read("certs/ek/stmicro/st33_rsa_ek_cert_with_trailing_ff.der");
    // The 1169-byte certificate ends with its signature; flip a bit in it.
    der[1160] ^= 0x01;
    let err = tpm_cert_store().verify(&der).unwrap_err();
    match &err {
        PkiError::BadSignature { source_name, .. } => {
            assert_eq!(source_name, "STM_RSA_05I.pem")
        }
        other => panic!("expected BadSignature, got {other}"),
    }
}

#[test]
fn tampered_tbs_is_rejected() {
    let mut der = read("certs/ek/stmicro/st33_ecc_ek_cert.der");
    // Change a byte of the public key inside the TBS (near the middle).
    let mid = der.len() / 2;
    der[mid] ^= 0x40;
    let err = tpm_cert_store().verify(&der).unwrap_err();
    assert!(
        matches!(
            err,
            PkiError::BadSignature { .. } | PkiError::CertParse { .. }
        ),
        "{err}"
    );
}

#[test]
fn garbage_ek_cert_is_a_parse_error() {
    let err = tpm_cert_store().verify(b"not a certificate").unwrap_err();
    assert!(matches!(err, PkiError::CertParse { .. }), "{err}");
    let err = tpm_cert_store().verify(&[]).unwrap_err();
    assert!(matches!(err, PkiError::CertParse { .. }), "{err}");
}

#[test]
fn idevid_and_iak_chain_with_validity_policy() {
    let chain = pem_or_der_to_der_list(&read("certs/idevid/iak_idevid_chain.pem")).unwrap();
    assert_eq!(chain.len(), 2);
    let store = EkCertStore::from_ders(
        chain
            .iter()
            .enumerate()
            .map(|(i, d)| (if i == 0 { "chain0" } else { "chain1" }, d.as_slice())),
    )
    .unwrap();
    let at_2024 = UNIX_EPOCH + Duration::from_secs(1_704_067_200);
    for file in ["keylime_test_idevid.der", "keylime_test_iak.der"] {
        let der = read(&format!("certs/idevid/{file}"));
        let strict = EkVerifyOptions {
            validity: ValidityPolicy::Enforce,
            at: Some(at_2024),
            ..Default::default()
        };
        let verdict = store
            .verify_with(&der, &strict)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(verdict.warnings.is_empty(), "{file}: {verdict:?}");
        assert!(verdict.reaches_root, "{file}");

        // After 2026-05-18 the leaf has expired: Enforce rejects, Warn reports.
        let at_2027 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let late = EkVerifyOptions {
            validity: ValidityPolicy::Enforce,
            at: Some(at_2027),
            ..Default::default()
        };
        let err = store.verify_with(&der, &late).unwrap_err();
        assert!(
            matches!(err, PkiError::NotValidAtTime { .. }),
            "{file}: {err}"
        );
        let warn = EkVerifyOptions {
            at: Some(at_2027),
            ..Default::default()
        };
        let verdict = store.verify_with(&der, &warn).unwrap();
        assert!(!verdict.warnings.is_empty(), "{file}");
        let ignore = EkVerifyOptions {
            validity: ValidityPolicy::Ignore,
            at: Some(at_2027),
            ..Default::default()
        };
        assert!(
            store
                .verify_with(&der, &ignore)
                .unwrap()
                .warnings
                .is_empty()
        );

        // Not issued by any TPM vendor (upstream test_iak_idevid_cert_checks).
        assert!(tpm_cert_store().verify(&der).is_err(), "{file}");
    }
}

#[test]
fn require_root_rejects_chain_ending_at_cross_signed_ca() {
    // STM_ECC_01RT in the store is cross-signed by a GlobalSign CA that is absent,
    // so the ST33 ECC EK cert is trusted (like upstream) but reaches no root.
    let store = tpm_cert_store();
    let der = read("certs/ek/stmicro/st33_ecc_ek_cert.der");
    let verdict = store.verify(&der).unwrap();
    let opts = EkVerifyOptions {
        require_root: true,
        ..Default::default()
    };
    match store.verify_with(&der, &opts) {
        Ok(v) => assert!(v.reaches_root && verdict.reaches_root),
        Err(e) => {
            assert!(!verdict.reaches_root);
            assert!(matches!(e, PkiError::NoSelfSignedRoot { .. }), "{e}");
        }
    }
}

#[test]
fn vendor_intermediate_bundle_verifies_against_root_bundle() {
    // 143 real intermediates (AMD, Intel, Microsoft, Infineon, ...) against 26 roots:
    // exercises RSA PKCS#1, RSA-PSS and ECDSA P-256/P-384 with real encodings.
    let roots =
        pem_or_der_to_der_list(&read("certs/tpm-ca-certificates/tpm-ca-certificates.pem")).unwrap();
    let inters = pem_or_der_to_der_list(&read(
        "certs/tpm-ca-certificates/tpm-intermediate-ca-certificates.pem",
    ))
    .unwrap();
    assert_eq!((roots.len(), inters.len()), (26, 143));
    let store = EkCertStore::from_ders(roots.iter().map(|d| ("root", d.as_slice()))).unwrap();
    let opts = EkVerifyOptions {
        intermediates: inters.clone(),
        validity: ValidityPolicy::Ignore,
        ..Default::default()
    };
    let mut ok = 0;
    let mut failures = Vec::new();
    let mut schemes = std::collections::BTreeSet::new();
    for (i, der) in inters.iter().enumerate() {
        match store.verify_with(der, &opts) {
            Ok(v) => {
                ok += 1;
                schemes.extend(
                    v.chain
                        .iter()
                        .filter_map(|l| l.signature)
                        .map(|s| format!("{s:?}")),
                );
            }
            Err(e) => failures.push(format!("#{i}: {e}")),
        }
    }
    eprintln!("schemes seen: {schemes:?}");
    for expected in ["RsaPkcs1(Sha256)", "Ecdsa(Sha384)"] {
        assert!(
            schemes.contains(expected),
            "{expected} not exercised: {schemes:?}"
        );
    }
    eprintln!(
        "verified {ok}, failed {}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        failures.iter().all(|f| f.contains("does not chain")),
        "{failures:#?}"
    );
    assert!(ok >= 100, "only {ok} verified");
}

#[test]
fn every_single_byte_corruption_of_the_tbs_is_rejected_without_panic() {
    let store = tpm_cert_store();
    let original = read("certs/ek/stmicro/st33_ecc_ek_cert.der");
    let (_, parsed) =
        <x509_parser::certificate::X509Certificate as x509_parser::prelude::FromDer<_>>::from_der(
            &original,
        )
        .unwrap();
    let tbs = parsed.tbs_certificate.as_ref();
    let start = tbs.as_ptr() as usize - original.as_ptr() as usize;
    let tbs_range = start..start + tbs.len();
    for i in 0..original.len() {
        let mut der = original.clone();
        der[i] ^= 0x5a;
        // Any outcome but a panic is acceptable outside the TBS; inside, it must fail.
        let result = store.verify(&der);
        if tbs_range.contains(&i) {
            assert!(result.is_err(), "corrupted TBS byte {i} still verified");
        }
    }
    // Truncations never panic and never verify.
    for len in 0..original.len() {
        assert!(
            store.verify(&original[..len]).is_err(),
            "truncated to {len}"
        );
    }
}
