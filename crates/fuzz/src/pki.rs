//! EK certificates as agents send them (PEM bundle, DER or base64 DER) and their chain
//! validation against a vendor CA store.

use std::sync::OnceLock;

use keylime_pki::{EkCertStore, EkVerifyOptions, ek_cert_public_key_spki, pem_or_der_to_der_list};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// The common name of the fuzz CA (an EK certificate issued under this name reaches the
/// signature check).
pub const CA_NAME: &str = "Fuzz TPM EK CA";

/// The fuzz CA's key pair: fixed, so committed seeds stay signed by it.
pub fn ca_key() -> KeyPair {
    let secret = p256::SecretKey::from_slice(&[0x3C; 32]).expect("fixed P-256 scalar");
    let pem = secret.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8 PEM");
    KeyPair::from_pem(&pem).expect("rcgen loads the fixed key")
}

/// The fuzz CA's self-signed certificate parameters.
pub fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2060, 1, 1);
    params
}

fn store() -> &'static EkCertStore {
    static STORE: OnceLock<EkCertStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let ca = ca_params().self_signed(&ca_key()).expect("fuzz CA");
        EkCertStore::from_ders([("fuzz-ca.pem", ca.der().as_ref())]).expect("fuzz CA parses")
    })
}

/// A certificate input: split into DER certificates; the first is the EK certificate, the
/// rest untrusted intermediates. Its public key is extracted and its chain checked under
/// every validity policy; the raw input is also checked as one DER certificate.
pub fn ek_cert(data: &[u8]) {
    let _ = ek_cert_public_key_spki(data);
    let _ = store().verify(data);
    let Ok(ders) = pem_or_der_to_der_list(data) else {
        return;
    };
    let Some((ek, intermediates)) = ders.split_first() else {
        return;
    };
    let _ = ek_cert_public_key_spki(ek);
    for validity in [
        keylime_pki::ValidityPolicy::Ignore,
        keylime_pki::ValidityPolicy::Enforce,
    ] {
        let opts = EkVerifyOptions {
            intermediates: intermediates.to_vec(),
            validity,
            at: None,
            require_root: validity == keylime_pki::ValidityPolicy::Enforce,
        };
        let _ = store().verify_with(ek, &opts);
    }
}
