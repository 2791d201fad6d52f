//! Writes the small generated seed inputs committed under `fuzz/seeds/<target>/` (the real
//! files of the shared test data are added at run time by `scripts/fuzz.sh`):
//!
//! ```text
//! cargo run -p keylime-fuzz --example make_seeds
//! ```
//!
//! Everything is deterministic except the EK certificate seeds (a fresh key, ECDSA nonces),
//! the credential blob (MakeCredential's random seed) and the bodies that carry them, so
//! re-running rewrites those files with equivalent content.

use std::fs;
use std::path::{Path, PathBuf};

use keylime_api::verifier::AddAgentRequest;
use keylime_api::{ActivateRequest, Envelope, RegisterRequest, encode_b64};
use keylime_fuzz::attestation::{NONCE, signed_quote_string};
use keylime_fuzz::ima::dsse_signing_key;
use keylime_fuzz::pki::{ca_key, ca_params};
use keylime_ima::policy::{KEYLIME_PAYLOAD_TYPE, RuntimePolicy, sign_ecdsa};
use keylime_tpm::alg::id;
use keylime_tpm::attest::{ST_ATTEST_QUOTE, TPM_GENERATED_VALUE};
use keylime_tpm::marshal::Writer;
use keylime_tpm::templates::{ak_template, ek_ecc_with_unique};
use keylime_tpm::{HashAlg, PcrSelection, Public, SignAlg, make_credential, pcr_blob, pcr_digest};
use rcgen::{CertificateParams, DnType, KeyPair};

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds")
}

fn write(target: &str, name: &str, bytes: impl AsRef<[u8]>) {
    let dir = seeds_dir().join(target);
    fs::create_dir_all(&dir).expect("seed directory");
    fs::write(dir.join(name), bytes).expect("seed file");
}

fn tpm2b(inner: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.tpm2b(inner);
    w.into_vec()
}

/// A SHA-256 quote of PCRs 0 and 10 (zeros, then 0xAA) carrying [`NONCE`].
fn quote_parts() -> (Vec<u8>, Vec<u8>) {
    let bank = HashAlg::Sha256;
    let values = vec![vec![0; 32], vec![0xAA; 32]];
    let sel = PcrSelection::new(bank, [0, 10]).expect("selection");
    let mut w = Writer::new();
    w.u32(TPM_GENERATED_VALUE).u16(ST_ATTEST_QUOTE);
    w.tpm2b(&[0x00, 0x0B, 0xAA, 0xBB]).tpm2b(NONCE.as_bytes());
    w.bytes(&1000u64.to_be_bytes()).u32(1).u32(0).u8(1);
    w.bytes(&0x2023_0101u64.to_be_bytes());
    PcrSelection::write_list(std::slice::from_ref(&sel), &mut w);
    w.tpm2b(&pcr_digest(bank, &values));
    let blob = pcr_blob::encode(&sel, &values).expect("PCR blob");
    (w.into_vec(), blob)
}

fn ek_public() -> Public {
    let key = p256::SecretKey::from_slice(&[0x11; 32]).expect("fixed scalar");
    let point = key.public_key().as_affine().to_owned();
    let point = p256::EncodedPoint::from(point);
    let tpmt = ek_ecc_with_unique(point.x().expect("x"), point.y().expect("y"));
    Public::from_tpm2b(&tpm2b(&tpmt)).expect("EK parses")
}

fn tpm_seeds() -> (Vec<u8>, Vec<u8>) {
    let ek = ek_public();
    write("tpm_public", "ek-ecc", ek.to_tpm2b());
    let ak_rsa = tpm2b(&ak_template(HashAlg::Sha256, SignAlg::RsaSsa));
    let ak_ecc = tpm2b(&ak_template(HashAlg::Sha256, SignAlg::Ecdsa));
    write("tpm_public", "ak-rsa-template", &ak_rsa);
    write("tpm_public", "ak-ecc-template", &ak_ecc);

    let (attest, blob) = quote_parts();
    write("tpm_attest", "quote", &attest);
    write("tpm_pcr_blob", "sha256-0-10", &blob);
    let mut sig = Writer::new();
    sig.u16(id::RSASSA).u16(id::SHA256).tpm2b(&[0x5C; 256]);
    write("tpm_signature", "rsassa", sig.into_vec());
    let quote = signed_quote_string(&attest, HashAlg::Sha256, &blob).expect("signed quote");
    let ecdsa = keylime_tpm::quote::decode_quote_string(&quote).expect("quote string");
    write("tpm_signature", "ecdsa", &ecdsa.signature);
    write("tpm_quote_string", "signed", &quote);
    write("attestation_quote", "signed", &quote);
    let mut binary = vec![0];
    binary.extend((attest.len() as u16).to_be_bytes());
    binary.extend(&attest);
    binary.extend(&blob);
    write("attestation_quote", "binary-sha256", binary);

    let ak_name = Public::from_tpm2b(&ak_ecc).expect("AK").name();
    let blob = make_credential(&ek, &ak_name, &[0x42; 32]).expect("MakeCredential");
    write("tpm_credential", "ecc-ek", blob.to_tpm2_tools());
    (ek.to_tpm2b(), ak_ecc)
}

fn ima_seeds() {
    let ima_ng = "10 0000000000000000000000000000000000000000 ima-ng sha256:0000000000000000000000000000000000000000000000000000000000000000 boot_aggregate\n\
                  10 1111111111111111111111111111111111111111 ima-ng sha256:abababababababababababababababababababababababababababababababab /bin/sh\n\
                  10 2222222222222222222222222222222222222222 ima-sig sha1:3333333333333333333333333333333333333333 /tmp/x 030202\n\
                  10 4444444444444444444444444444444444444444 ima-buf sha256:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd .ima 3082\n";
    write("ima_parse", "mixed", ima_ng);
    for flags in [0u8, 1, 5, 9] {
        let mut chunk = vec![flags];
        chunk.extend_from_slice(ima_ng.as_bytes());
        write("ima_check", &format!("flags-{flags}"), chunk);
    }

    let mut policy = RuntimePolicy::empty();
    policy.meta.generator = 3;
    policy
        .digests
        .insert("/bin/sh".into(), vec!["ab".repeat(32)]);
    policy.keyrings.insert(".ima".into(), vec!["cd".repeat(32)]);
    policy.excludes = vec!["/tmp/.*".into(), "^/var/(log|cache)/".into()];
    let json = policy.to_json();
    write("ima_policy", "plain", &json);
    let envelope =
        sign_ecdsa(json.as_bytes(), KEYLIME_PAYLOAD_TYPE, &dsse_signing_key()).expect("DSSE");
    write("ima_policy", "dsse", envelope.to_json());
    write("ima_policy", "ec-key", dsse_signing_key().to_sec1_pem());

    write(
        "ima_allowlist",
        "flat",
        "abababababababababababababababababababababababababababababababab  /bin/sh\n\
         cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd  .ima\n\0/tmp/.*\n",
    );
    write(
        "ima_allowlist",
        "json",
        r#"{"meta": {"version": 1}, "release": 0, "hashes": {"/bin/sh": ["abababababababababababababababababababababababababababababababab"]}, "keyrings": {}, "ima": {"ignored_keyrings": [], "log_hash_alg": "sha1"}}"#,
    );
}

fn eventlog_seeds() {
    write(
        "eventlog_refstate",
        "small",
        r#"{"has_secureboot": false, "scrtm_and_bios": [{"scrtm": {"sha256": "0x00"}, "platform_firmware": []}], "pk": [], "kek": [], "db": [], "dbx": [], "mokdig": [], "mokxdig": [], "kernels": [{"shim_authcode_sha256": "0x00", "grub_authcode_sha256": "0x00", "vmlinuz_plain_sha256": "0x00", "initrd_plain_sha256": "0x00", "kernel_cmdline": ".*"}]}"#,
    );
    // A crypto-agile log (little-endian): the Spec ID event (SHA-256) and one EV_SEPARATOR
    // in PCR 0.
    let mut spec = b"Spec ID Event03\0".to_vec();
    spec.extend(0u32.to_le_bytes()); // platform class
    spec.extend([0, 2, 0, 2]); // spec version 2.0 errata 0, uintn size 2
    spec.extend(1u32.to_le_bytes());
    spec.extend(id::SHA256.to_le_bytes());
    spec.extend(32u16.to_le_bytes());
    spec.push(0); // vendor info size
    let mut log = Vec::new();
    log.extend(0u32.to_le_bytes()); // PCR
    log.extend(3u32.to_le_bytes()); // EV_NO_ACTION
    log.extend([0; 20]);
    log.extend((spec.len() as u32).to_le_bytes());
    log.extend(&spec);
    let data = [0u8; 4];
    log.extend(0u32.to_le_bytes());
    log.extend(4u32.to_le_bytes()); // EV_SEPARATOR
    log.extend(1u32.to_le_bytes());
    log.extend(id::SHA256.to_le_bytes());
    log.extend(HashAlg::Sha256.digest(&data));
    log.extend(4u32.to_le_bytes());
    log.extend(data);
    write("eventlog_parse", "spec-id-separator", &log);
    write("eventlog_mb_check", "spec-id-separator", &log);
}

fn api_seeds(ek_tpm: &[u8], ak_tpm: &[u8], ek_cert_pem: &str) {
    let register = RegisterRequest {
        aik_tpm: Some(encode_b64(ak_tpm)),
        ek_tpm: Some(encode_b64(ek_tpm)),
        ekcert: Some(ek_cert_pem.to_owned()),
        mtls_cert: Some("disabled".into()),
        ip: Some("127.0.0.1".into()),
        port: Some(9002),
        agent_id: Some("d432fbb3-d2f1-4a97-9ef7-75bd81c00000".into()),
        ..Default::default()
    };
    let register = serde_json::to_string(&register).expect("JSON");
    write("api_registration", "register", &register);
    write("api_bodies", "register", &register);
    let activate = ActivateRequest {
        auth_tag: "ab".repeat(48),
    };
    write(
        "api_bodies",
        "activate",
        serde_json::to_string(&activate).expect("JSON"),
    );

    let (attest, blob) = quote_parts();
    let quote = signed_quote_string(&attest, HashAlg::Sha256, &blob).expect("quote");
    let response = keylime_api::agent::QuoteResponse {
        quote,
        hash_alg: "sha256".into(),
        enc_alg: "ecc".into(),
        sign_alg: "ecdsa".into(),
        ima_measurement_list: Some("10 00 ima-ng sha1:00 boot_aggregate\n".into()),
        ima_measurement_list_entry: Some(0),
        ..Default::default()
    };
    let envelope = serde_json::to_string(&Envelope::ok(response)).expect("JSON");
    write("api_bodies", "quote-response", envelope);

    let mut policy = RuntimePolicy::empty();
    policy.meta.generator = 3;
    policy
        .digests
        .insert("/bin/sh".into(), vec!["ab".repeat(32)]);
    let add = serde_json::json!({
        "tpm_policy": r#"{"mask": "0x400", "10": ["aa"]}"#,
        "runtime_policy": encode_b64(policy.to_json().as_bytes()),
        "mb_policy": null,
        "ima_sign_verification_keys": "",
        "metadata": "{}",
        "revocation_key": "",
        "accept_tpm_hash_algs": ["sha256"],
        "accept_tpm_encryption_algs": "['ecc', 'rsa']",
        "accept_tpm_signing_algs": ["ecdsa", "rsassa"],
        "ak_tpm": encode_b64(ak_tpm),
        "mtls_cert": ek_cert_pem,
        "v": encode_b64(&[7; 32]),
        "cloudagent_ip": "127.0.0.1",
        "cloudagent_port": "9002",
        "supported_version": "2.3",
    })
    .to_string();
    serde_json::from_str::<AddAgentRequest>(&add).expect("seed add-agent body parses");
    write("api_add_agent", "add", &add);
    write("api_bodies", "add", &add);
}

fn pki_seeds() -> String {
    let issuer = ca_params().self_signed(&ca_key()).expect("CA");
    let ek_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "fuzz EK");
    params.not_before = rcgen::date_time_ymd(2021, 1, 1);
    params.not_after = rcgen::date_time_ymd(2051, 1, 1);
    let ek = params
        .signed_by(&ek_key, &issuer, &ca_key())
        .expect("EK cert");
    write("pki_ek_cert", "ek.der", ek.der());
    write(
        "pki_ek_cert",
        "ek-and-ca.pem",
        format!("{}{}", ek.pem(), issuer.pem()),
    );
    ek.pem()
}

fn main() {
    let (ek_tpm, ak_tpm) = tpm_seeds();
    ima_seeds();
    eventlog_seeds();
    let ek_pem = pki_seeds();
    api_seeds(&ek_tpm, &ak_tpm, &ek_pem);
    println!("seeds written to {}", seeds_dir().display());
}
