//! EK certificates provisioned by `swtpm_setup` (signed by a private `swtpm_localca`), read
//! from NV, match the EK public keys; chain certificates are read from the EK chain range.

use std::process::Command;

use keylime_testkit::Swtpm;
use keylime_tpm::{EkAlg, Tcti, Tpm};
use x509_parser::prelude::*;

fn spki_of(der: &[u8]) -> Vec<u8> {
    let (_rest, cert) = X509Certificate::from_der(der).expect("EK certificate is DER X.509");
    cert.public_key().raw.to_vec()
}

fn pem_to_der(path: &std::path::Path) -> Vec<u8> {
    let text = std::fs::read(path).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&text).unwrap();
    pem.contents
}

#[test]
fn ek_certificates_match_ek_keys() {
    let swtpm = Swtpm::start_with_ek_certs();
    let mut tpm = Tpm::open(&Tcti::parse(&swtpm.tcti_string()).unwrap()).unwrap();

    // RSA: the certificate at 0x01c00002 certifies both the persistent EK swtpm_setup made
    // and the EK we recreate from the default template.
    let cert = tpm
        .read_ek_certificate(EkAlg::Rsa2048)
        .unwrap()
        .expect("RSA EK cert in NV");
    let cert_spki = spki_of(&cert);
    let persistent = tpm.load_persistent_ek(0x8101_0001).unwrap();
    assert_eq!(persistent.public.spki_der().unwrap(), cert_spki);
    let created = tpm.create_ek(EkAlg::Rsa2048).unwrap();
    assert_eq!(created.public.spki_der().unwrap(), cert_spki);
    assert_eq!(created.public, persistent.public);

    // ECC: swtpm_setup 0.7 provisions a NIST P-384 EK (high range, 0x01c00016), not P-256.
    assert_eq!(tpm.read_ek_certificate(EkAlg::EccP256).unwrap(), None);
    let ecc_cert = tpm.nv_read(0x01C0_0016).unwrap();
    let ecc_ek = tpm.load_persistent_ek(0x8101_0016).unwrap();
    assert_eq!(ecc_ek.public.spki_der().unwrap(), spki_of(&ecc_cert));

    // The certificates chain to the local CA's issuer.
    let issuer = pem_to_der(&swtpm.localca_dir().unwrap().join("issuercert.pem"));
    let (_, issuer) = X509Certificate::from_der(&issuer).unwrap();
    let (_, ek_cert) = X509Certificate::from_der(&cert).unwrap();
    assert_eq!(ek_cert.issuer(), issuer.subject());

    // Nothing in the chain range yet.
    assert!(tpm.read_ek_chain_certificates().unwrap().is_empty());
}

#[test]
fn ek_chain_certificates_are_read_in_index_order() {
    let swtpm = Swtpm::start_with_ek_certs();
    let ca = swtpm.localca_dir().unwrap();
    let issuer = pem_to_der(&ca.join("issuercert.pem"));
    let root = pem_to_der(&ca.join("swtpm-localca-rootca-cert.pem"));
    let dir = tempfile::tempdir().unwrap();
    // Index 0x01c00101 readable by its own (empty) auth, 0x01c00100 only by the owner.
    for (index, der, attrs) in [
        ("0x01c00101", &root, "ownerwrite|authread|ownerread"),
        ("0x01c00100", &issuer, "ownerwrite|ownerread"),
    ] {
        let file = dir.path().join(format!("{index}.der"));
        std::fs::write(&file, der).unwrap();
        for args in [
            vec![
                "tpm2_nvdefine",
                index,
                "-C",
                "o",
                "-s",
                &der.len().to_string(),
                "-a",
                attrs,
            ],
            vec![
                "tpm2_nvwrite",
                index,
                "-C",
                "o",
                "-i",
                file.to_str().unwrap(),
            ],
        ] {
            let out = Command::new(args[0])
                .args(&args[1..])
                .env("TPM2TOOLS_TCTI", swtpm.tcti_string())
                .output()
                .unwrap_or_else(|e| panic!("{} (tpm2-tools) cannot run: {e}", args[0]));
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let mut tpm = Tpm::open(&Tcti::parse(&swtpm.tcti_string()).unwrap()).unwrap();
    let chain = tpm.read_ek_chain_certificates().unwrap();
    assert_eq!(chain, vec![issuer, root]);
    // Both exceed swtpm's NV buffer (1024 bytes), so each took more than one NV_Read.
    assert!(chain.iter().all(|c| c.len() > 1024));
}
