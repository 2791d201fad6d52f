//! The agent's identifier: the `uuid` option's three modes (a fixed id, `generate`,
//! `hash_ek`) resolved against the EK, and the exact `hash_ek` digest upstream computes.
//!
//! `hash_ek` = lowercase hex SHA-256 of the EK public key as OpenSSL's
//! `PEM_write_PUBKEY` prints it: `-----BEGIN PUBLIC KEY-----\n`, the base64 of the DER
//! SubjectPublicKeyInfo in 64-character lines each ending in `\n`, then
//! `-----END PUBLIC KEY-----\n` (rust-keylime `hash_ek_pubkey`, Python
//! `public_bytes(PEM, SubjectPublicKeyInfo)` — both give these bytes).

use base64::Engine as _;
use keylime_config::UuidSetting;
use sha2::{Digest, Sha256};

/// The agent id for this start under the `uuid` option, given the EK's DER
/// SubjectPublicKeyInfo: the fixed id, a fresh UUID v4, or [`hash_ek`].
pub fn resolve_agent_id(setting: &UuidSetting, ek_spki_der: &[u8]) -> String {
    match setting {
        UuidSetting::Fixed(id) => id.clone(),
        UuidSetting::Generate => uuid::Uuid::new_v4().to_string(),
        UuidSetting::HashEk => hash_ek(ek_spki_der),
    }
}

/// OpenSSL-style PEM of a DER SubjectPublicKeyInfo (64-char lines, trailing newline).
pub fn public_key_pem(spki_der: &[u8]) -> String {
    pem_encode("PUBLIC KEY", spki_der)
}

/// RFC 7468 text encoding as OpenSSL writes it: `-----BEGIN {label}-----\n`, base64 in
/// 64-character lines each ending in `\n`, `-----END {label}-----\n`.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 32);
    pem.push_str(&format!("-----BEGIN {label}-----\n"));
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        // base64 text is ASCII, so any byte offset is a char boundary.
        let (line, tail) = rest.split_at(rest.len().min(64));
        pem.push_str(line);
        pem.push('\n');
        rest = tail;
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// The `hash_ek` agent id: hex SHA-256 of [`public_key_pem`].
pub fn hash_ek(ek_spki_der: &[u8]) -> String {
    hex::encode(Sha256::digest(public_key_pem(ek_spki_der).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_settings_resolve() {
        let fixed = UuidSetting::Fixed("d432fbb3-d2f1-4a97-9ef7-75bd81c00000".into());
        assert_eq!(
            resolve_agent_id(&fixed, b"x"),
            "d432fbb3-d2f1-4a97-9ef7-75bd81c00000"
        );
        let a = resolve_agent_id(&UuidSetting::Generate, b"x");
        let b = resolve_agent_id(&UuidSetting::Generate, b"x");
        assert_ne!(a, b);
        assert!(uuid::Uuid::parse_str(&a).is_ok());
        assert_eq!(resolve_agent_id(&UuidSetting::HashEk, b"x"), hash_ek(b"x"));
    }

    #[test]
    fn pem_has_openssl_layout() {
        let der = vec![0xAB; 100]; // 136 base64 chars -> lines of 64, 64, 8
        let pem = public_key_pem(&der);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines.first(), Some(&"-----BEGIN PUBLIC KEY-----"));
        assert_eq!(lines.last(), Some(&"-----END PUBLIC KEY-----"));
        assert_eq!(
            lines.iter().map(|l| l.len()).collect::<Vec<_>>(),
            vec![26, 64, 64, 8, 24]
        );
        assert!(pem.ends_with("-----\n"));
    }

    #[test]
    fn hash_ek_matches_sha256_of_the_pem_text() {
        // Independent computation: sha256 over the literal PEM bytes.
        let der = [0x30, 0x03, 0x02, 0x01, 0x00];
        let expected_pem = "-----BEGIN PUBLIC KEY-----\nMAMCAQA=\n-----END PUBLIC KEY-----\n";
        assert_eq!(public_key_pem(&der), expected_pem);
        assert_eq!(hash_ek(&der), hex::encode(Sha256::digest(expected_pem)));
        assert_eq!(hash_ek(&der).len(), 64);
    }

    #[test]
    fn hash_ek_matches_openssl_pubkey_digest_of_real_ek_certs() {
        // Expected values: `openssl x509 -pubkey -noout | sha256sum`, the check upstream's
        // own functional test uses for `uuid = "hash_ek"`.
        let cases = [
            (
                "certs/ek/stmicro/st33_ecc_ek_cert.der",
                "a8eab0335e6cc63cc14f0dc6759fdc0df6f9348a447325567aedc7d6fa767a6c",
            ),
            (
                "certs/ek/gce/pca_tpm_rsa_enc_cert.pem",
                "b9e47b31c6622fd6f15f6ff387dbd0508ca5b4245d8a00502ecb78d5c8bd5f6c",
            ),
        ];
        for (file, expected) in cases {
            let bytes = std::fs::read(keylime_testkit::testdata(file)).unwrap();
            let der = keylime_pki::pem_or_der_to_der_list(&bytes)
                .unwrap()
                .remove(0);
            let spki = keylime_pki::ek_cert_public_key_spki(&der).unwrap();
            assert_eq!(hash_ek(&spki), expected, "{file}");
        }
    }
}
