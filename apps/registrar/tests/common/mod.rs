//! Test support: software EK/AK key material marshalled as TPM2B_PUBLIC, EK certificates
//! from a throwaway vendor CA, an in-process registrar on port 0, and HTTP clients.

#![allow(dead_code)]

pub mod env;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylime_registrar::{RegistrarSettings, RunningRegistrar};
use rcgen::{CertificateParams, DnType, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256};
use rsa::RsaPrivateKey;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::traits::PublicKeyParts as _;

pub const EK_ATTRS: u32 = 0x0003_00B2;
pub const AK_ATTRS: u32 = 0x0005_0072;
/// The default EK policy (template A, SHA-256).
pub const EK_POLICY_A: [u8; 32] = [
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
    0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA,
];

fn tpm2b(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A software key with its TPM2B_PUBLIC and SubjectPublicKeyInfo.
pub struct SoftKey {
    pub tpm2b: Vec<u8>,
    pub spki: Vec<u8>,
}

impl SoftKey {
    pub fn b64(&self) -> String {
        STANDARD.encode(&self.tpm2b)
    }
}

fn rsa_key() -> (Vec<u8>, Vec<u8>) {
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("RSA key generation");
    let public = key.to_public_key();
    let mut modulus = public.n().to_bytes_be();
    while modulus.len() < 256 {
        modulus.insert(0, 0);
    }
    let spki = public
        .to_public_key_der()
        .expect("SPKI")
        .as_bytes()
        .to_vec();
    (modulus, spki)
}

fn ecc_key() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("P-256 key");
    let raw = key.public_key_raw().to_vec(); // 04 || x || y
    assert_eq!(raw.len(), 65);
    (
        raw[1..33].to_vec(),
        raw[33..].to_vec(),
        key.public_key_der(),
    )
}

fn tpmt(ty: u16, attrs: u32, policy: &[u8], params_and_unique: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&ty.to_be_bytes());
    t.extend_from_slice(&0x000Bu16.to_be_bytes()); // nameAlg SHA-256
    t.extend_from_slice(&attrs.to_be_bytes());
    t.extend_from_slice(&tpm2b(policy));
    t.extend_from_slice(params_and_unique);
    tpm2b(&t)
}

/// RSA-2048 EK (template L-1 shape).
pub fn rsa_ek() -> SoftKey {
    let (modulus, spki) = rsa_key();
    let mut p = vec![0x00, 0x06, 0x00, 0x80, 0x00, 0x43]; // AES-128-CFB
    p.extend_from_slice(&[0x00, 0x10]); // scheme NULL
    p.extend_from_slice(&2048u16.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&tpm2b(&modulus));
    SoftKey {
        tpm2b: tpmt(0x0001, EK_ATTRS, &EK_POLICY_A, &p),
        spki,
    }
}

/// RSA-2048 restricted signing AK (RSASSA-SHA256) with the given attributes.
pub fn rsa_ak_with_attrs(attrs: u32) -> SoftKey {
    let (modulus, spki) = rsa_key();
    let mut p = vec![0x00, 0x10]; // symmetric NULL
    p.extend_from_slice(&[0x00, 0x14, 0x00, 0x0B]); // RSASSA / SHA-256
    p.extend_from_slice(&2048u16.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&tpm2b(&modulus));
    SoftKey {
        tpm2b: tpmt(0x0001, attrs, &[], &p),
        spki,
    }
}

pub fn rsa_ak() -> SoftKey {
    rsa_ak_with_attrs(AK_ATTRS)
}

/// ECC P-256 EK (template L-2 shape).
pub fn ecc_ek() -> SoftKey {
    let (x, y, spki) = ecc_key();
    let mut p = vec![0x00, 0x06, 0x00, 0x80, 0x00, 0x43];
    p.extend_from_slice(&[0x00, 0x10]); // scheme NULL
    p.extend_from_slice(&[0x00, 0x03]); // NIST P-256
    p.extend_from_slice(&[0x00, 0x10]); // kdf NULL
    p.extend_from_slice(&tpm2b(&x));
    p.extend_from_slice(&tpm2b(&y));
    SoftKey {
        tpm2b: tpmt(0x0023, EK_ATTRS, &EK_POLICY_A, &p),
        spki,
    }
}

/// ECC P-256 ECDSA-SHA256 AK.
pub fn ecc_ak() -> SoftKey {
    let (x, y, spki) = ecc_key();
    let mut p = vec![0x00, 0x10];
    p.extend_from_slice(&[0x00, 0x18, 0x00, 0x0B]);
    p.extend_from_slice(&[0x00, 0x03]);
    p.extend_from_slice(&[0x00, 0x10]);
    p.extend_from_slice(&tpm2b(&x));
    p.extend_from_slice(&tpm2b(&y));
    SoftKey {
        tpm2b: tpmt(0x0023, AK_ATTRS, &[], &p),
        spki,
    }
}

/// A throwaway TPM vendor CA that issues EK certificates for arbitrary public keys.
pub struct VendorCa {
    key: KeyPair,
    cert: rcgen::Certificate,
}

impl VendorCa {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("CA cert");
        VendorCa { key, cert }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// Write the CA into `dir` as a TPM cert store.
    pub fn write_store(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("vendor-root.pem"), self.pem()).unwrap();
    }

    /// An EK certificate for `spki` (DER).
    pub fn issue_ek_cert(&self, spki: &[u8]) -> Vec<u8> {
        let subject = rcgen::SubjectPublicKeyInfo::from_der(spki).expect("SPKI");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, "EK");
        params
            .signed_by(&subject, &self.cert, &self.key)
            .expect("EK cert")
            .der()
            .to_vec()
    }
}

pub fn pem_of(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

/// Settings for an in-process registrar on loopback port 0 in `state`.
pub fn settings(
    state: &Path,
    cert_store: Option<&Path>,
    require_ek_cert: bool,
) -> RegistrarSettings {
    let mut s = RegistrarSettings::new(state);
    s.http_addr = "127.0.0.1:0".parse().unwrap();
    s.https_addr = "127.0.0.1:0".parse().unwrap();
    s.require_ek_cert = require_ek_cert;
    s.tpm_cert_store = cert_store.map(Path::to_path_buf);
    s.request_timeout = Duration::from_secs(20);
    s
}

pub async fn start(settings: RegistrarSettings) -> RunningRegistrar {
    keylime_registrar::start(settings)
        .await
        .expect("registrar starts")
}

fn tls_files(tls_dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (
        tls_dir.join("cacert.crt"),
        tls_dir.join("client-cert.crt"),
        tls_dir.join("client-private.pem"),
    )
}

/// An HTTPS client trusting the registrar CA, with or without the generated client cert.
pub fn https_client(tls_dir: &Path, with_client_cert: bool) -> reqwest::Client {
    let (ca, cert, key) = tls_files(tls_dir);
    let cas = keylime_pki::load_certs(&ca).expect("CA cert");
    let identity = with_client_cert.then(|| {
        (
            keylime_pki::load_certs(&cert).expect("client cert"),
            keylime_pki::load_key(&key).expect("client key"),
        )
    });
    let config = keylime_pki::client_config(cas, identity).expect("client config");
    install_ring();
    reqwest::Client::builder()
        .use_preconfigured_tls((*config).clone())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

fn install_ring() {
    // reqwest is built without a default provider; the project uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn http_client() -> reqwest::Client {
    install_ring();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

pub fn https_url(reg: &RunningRegistrar, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", reg.https_addr.port())
}

pub fn http_url(reg: &RunningRegistrar, path: &str) -> String {
    format!("http://{}{path}", reg.http_addr)
}

/// A register body as the Rust agent sends it.
pub fn register_body(ek: &SoftKey, ak: &SoftKey, ekcert: Option<&[u8]>) -> serde_json::Value {
    serde_json::json!({
        "ek_tpm": ek.b64(),
        "aik_tpm": ak.b64(),
        "ekcert": ekcert.map(pem_of).unwrap_or_default(),
        "iak_cert": null,
        "idevid_cert": null,
        "ip": "127.0.0.1",
        "port": 9002,
        "mtls_cert": "disabled",
    })
}

pub async fn json_of(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, value)
}

/// Decode the tpm2-tools blob into (credential blob, encrypted secret).
pub fn split_blob(b64: &str) -> (Vec<u8>, Vec<u8>) {
    let blob = STANDARD.decode(b64).expect("blob b64");
    assert_eq!(&blob[0..4], &[0xBA, 0xDC, 0xC0, 0xDE], "magic");
    assert_eq!(&blob[4..8], &[0, 0, 0, 1], "version");
    let cred_size = u16::from_be_bytes([blob[8], blob[9]]) as usize;
    let cred = blob[10..10 + cred_size].to_vec();
    let s = 10 + cred_size;
    let secret_size = u16::from_be_bytes([blob[s], blob[s + 1]]) as usize;
    let secret = blob[s + 2..s + 2 + secret_size].to_vec();
    assert_eq!(blob.len(), s + 2 + secret_size, "no trailing bytes");
    (cred, secret)
}
