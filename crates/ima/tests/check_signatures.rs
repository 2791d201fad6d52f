//! File signatures and key learning through `check`: keys and signatures generated here,
//! `ima-sig` lines and template hashes built by the test's own writer.

mod common;

use base64::Engine as _;
use common::{LogBuilder, ids, input, prepare};
use keylime_ima::policy::RuntimePolicy;
use keylime_ima::{HashAlg, ImaState, check};
use p256::ecdsa::signature::hazmat::PrehashSigner as _;
use rsa::pkcs1::EncodeRsaPublicKey as _;
use rsa::pkcs8::EncodePublicKey as _;
use sha1::Digest as _;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn last4(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[b.len() - 4..].try_into().unwrap())
}

/// `signature_v2_hdr` + signature.
fn sig_field(hash_algo: u8, keyid: u32, sig: &[u8]) -> Vec<u8> {
    let mut v = vec![3, 2, hash_algo];
    v.extend_from_slice(&keyid.to_be_bytes());
    v.extend_from_slice(&(sig.len() as u16).to_be_bytes());
    v.extend_from_slice(sig);
    v
}

struct RsaSigner {
    key: rsa::RsaPrivateKey,
}

impl RsaSigner {
    fn new() -> Self {
        RsaSigner {
            key: rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap(),
        }
    }
    fn public(&self) -> rsa::RsaPublicKey {
        rsa::RsaPublicKey::from(&self.key)
    }
    /// Upstream's id for a bare RSA key: SHA-1 over the PKCS#1 DER, last 4 bytes.
    fn keyid(&self) -> u32 {
        last4(&sha1::Sha1::digest(
            self.public().to_pkcs1_der().unwrap().as_bytes(),
        ))
    }
    fn spki_b64(&self) -> String {
        b64(self.public().to_public_key_der().unwrap().as_bytes())
    }
    fn sign_sha256(&self, digest: &[u8]) -> Vec<u8> {
        self.key
            .sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), digest)
            .unwrap()
    }
}

fn p256_keyid(vk: &p256::ecdsa::VerifyingKey) -> u32 {
    last4(&sha1::Sha1::digest(vk.to_encoded_point(false).as_bytes()))
}

fn policy_with_keys(spkis: &[String], keyids: &[u32]) -> RuntimePolicy {
    let mut p = RuntimePolicy::empty();
    p.meta.generator = 3;
    p.verification_keys = serde_json::json!({"keyids": keyids, "pubkeys": spkis}).to_string();
    p
}

fn run(log: &LogBuilder, policy: &RuntimePolicy) -> keylime_ima::ImaVerdict {
    let prepared = prepare(policy);
    let pcr = log.pcr(HashAlg::Sha256);
    check(
        &input(&log.text, 0, HashAlg::Sha256, &pcr, Some(&prepared)),
        &ImaState::default(),
    )
}

#[test]
fn rsa_signed_files_are_accepted_without_digests_and_bad_ones_rejected() {
    let signer = RsaSigner::new();
    let digest = sha2::Sha256::digest(b"signed file").to_vec();
    let sig = signer.sign_sha256(&digest);
    let policy = policy_with_keys(&[signer.spki_b64()], &[]);

    let mut good = LogBuilder::new();
    good.ima_sig(
        "/usr/bin/signed",
        "sha256",
        &digest,
        &sig_field(4, signer.keyid(), &sig),
    );
    let v = run(&good, &policy);
    assert!(v.passed(), "{:?}", v.failures);
    assert_eq!(v.evaluated_entries, 1);

    let reject = |field: Vec<u8>, why: &str| {
        let mut log = LogBuilder::new();
        log.ima_sig("/usr/bin/signed", "sha256", &digest, &field);
        let v = run(&log, &policy);
        assert_eq!(ids(&v), vec!["validation.ima-ng.not_in_allowlist"], "{why}");
        assert_eq!(
            v.failures[0].message(),
            Some("File not found in allowlist: /usr/bin/signed"),
            "{why}"
        );
        // the digest alone still accepts it
        let mut listed = policy.clone();
        listed
            .digests
            .insert("/usr/bin/signed".into(), vec![common::hexs(&digest)]);
        assert!(run(&log, &listed).passed(), "{why}");
    };
    let mut bad = sig.clone();
    bad[10] ^= 1;
    reject(sig_field(4, signer.keyid(), &bad), "corrupted signature");
    reject(sig_field(4, signer.keyid() ^ 1, &sig), "unknown key id");
    reject(
        sig_field(2, signer.keyid(), &sig),
        "sha1 signature over a sha256 digest",
    );
    let mut v1 = sig_field(4, signer.keyid(), &sig);
    v1[1] = 1;
    reject(v1, "version 1 header");
    let other = sha2::Sha256::digest(b"other file").to_vec();
    reject(
        sig_field(4, signer.keyid(), &signer.sign_sha256(&other)),
        "signature over another digest",
    );

    // an explicit key id in verification-keys overrides the derived one
    let named = policy_with_keys(&[signer.spki_b64()], &[0x1234_5678]);
    let mut log = LogBuilder::new();
    log.ima_sig(
        "/usr/bin/signed",
        "sha256",
        &digest,
        &sig_field(4, 0x1234_5678, &sig),
    );
    assert!(run(&log, &named).passed());
    assert!(!run(&log, &policy).passed());
}

#[test]
fn ecdsa_signed_files_verify_on_p256_and_p384() {
    let sk = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let vk = *sk.verifying_key();
    let digest = sha2::Sha256::digest(b"ec file").to_vec();
    let sig: p256::ecdsa::Signature = sk.sign_prehash(&digest).unwrap();
    let spki = b64(vk.to_public_key_der().unwrap().as_bytes());

    let sk384 = p384::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let vk384 = *sk384.verifying_key();
    let digest384 = sha2::Sha384::digest(b"ec file").to_vec();
    let sig384: p384::ecdsa::Signature = sk384.sign_prehash(&digest384).unwrap();
    let keyid384 = last4(&sha1::Sha1::digest(
        vk384.to_encoded_point(false).as_bytes(),
    ));
    let spki384 = b64(p384::pkcs8::EncodePublicKey::to_public_key_der(&vk384)
        .unwrap()
        .as_bytes());

    let mut log = LogBuilder::new();
    let f256 = sig_field(4, p256_keyid(&vk), sig.to_der().as_bytes());
    let f384 = sig_field(5, keyid384, sig384.to_der().as_bytes());
    log.ima_sig("/usr/bin/ec256", "sha256", &digest, &f256);
    log.ima_sig("/usr/bin/ec384", "sha384", &digest384, &f384);
    let both = policy_with_keys(&[spki.clone(), spki384], &[]);
    let v = run(&log, &both);
    assert!(v.passed(), "{:?}", v.failures);

    let only256 = policy_with_keys(&[spki], &[]);
    let v = run(&log, &only256);
    assert_eq!(ids(&v), vec!["validation.ima-ng.not_in_allowlist"]);
    assert_eq!(
        v.failures[0].message(),
        Some("File not found in allowlist: /usr/bin/ec384")
    );
}

/// A self-signed P-256 certificate and its signing key.
fn certificate() -> (Vec<u8>, p256::ecdsa::SigningKey) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["ima-signer".into()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    let sk = <p256::ecdsa::SigningKey as p256::pkcs8::DecodePrivateKey>::from_pkcs8_der(
        &kp.serialize_der(),
    )
    .unwrap();
    (cert.der().to_vec(), sk)
}

/// The key id upstream gives a certificate: its Subject Key Identifier's last 4 bytes, or
/// the key's derived id without one.
fn cert_keyid(der: &[u8], vk: &p256::ecdsa::VerifyingKey) -> u32 {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    for ext in cert.extensions() {
        if let x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) =
            ext.parsed_extension()
        {
            return last4(k.0);
        }
    }
    p256_keyid(vk)
}

#[test]
fn keys_measured_into_a_keyring_are_learned_and_kept_for_the_boot() {
    let (cert, sk) = certificate();
    let keyid = cert_keyid(&cert, sk.verifying_key());
    let sign = |name: &[u8]| {
        let d = sha2::Sha256::digest(name).to_vec();
        let s: p256::ecdsa::Signature = sk.sign_prehash(&d).unwrap();
        (d, sig_field(4, keyid, s.to_der().as_bytes()))
    };
    let mut policy = RuntimePolicy::empty();
    policy.meta.generator = 3;
    policy.keyrings.insert(
        ".ima".into(),
        vec![common::hexs(&sha2::Sha256::digest(&cert))],
    );
    let prepared = prepare(&policy);

    let mut log = LogBuilder::new();
    log.ima_buf(".ima", &cert);
    let (d1, s1) = sign(b"/usr/bin/one");
    log.ima_sig("/usr/bin/one", "sha256", &d1, &s1);
    let pcr = log.pcr(HashAlg::Sha256);
    let v = check(
        &input(&log.text, 0, HashAlg::Sha256, &pcr, Some(&prepared)),
        &ImaState::default(),
    );
    assert!(v.passed(), "{:?}", v.failures);
    let learned = &v.next_state.learned_keys;
    assert_eq!(learned.len(), 1);
    assert_eq!(
        (learned[0].keyring.as_str(), learned[0].keyid),
        (".ima", keyid)
    );

    // the next round trusts the key from the state alone
    let state = v.next_state.clone();
    let mut more = log.clone();
    more.text.clear();
    let (d2, s2) = sign(b"/usr/bin/two");
    more.ima_sig("/usr/bin/two", "sha256", &d2, &s2);
    let pcr = more.pcr(HashAlg::Sha256);
    let v = check(
        &input(&more.text, 2, HashAlg::Sha256, &pcr, Some(&prepared)),
        &state,
    );
    assert!(v.passed(), "{:?}", v.failures);
    assert_eq!(
        v.next_state.learned_keys, state.learned_keys,
        "learned once"
    );
    // ... but not after a reset (a list from entry 0 without the key entry)
    let mut fresh = LogBuilder::new();
    fresh.ima_sig("/usr/bin/two", "sha256", &d2, &s2);
    let pcr = fresh.pcr(HashAlg::Sha256);
    let v = check(
        &input(&fresh.text, 0, HashAlg::Sha256, &pcr, Some(&prepared)),
        &state,
    );
    assert_eq!(ids(&v), vec!["validation.ima-ng.not_in_allowlist"]);

    // a key the policy does not list is not learned
    let unlisted = prepare(&{
        let mut p = policy.clone();
        p.keyrings.insert(".ima".into(), vec!["ab".repeat(32)]);
        p
    });
    let pcr = log.pcr(HashAlg::Sha256);
    let v = check(
        &input(&log.text, 0, HashAlg::Sha256, &pcr, Some(&unlisted)),
        &ImaState::default(),
    );
    assert_eq!(
        ids(&v),
        vec![
            "validation.ima-ng.runtime_policy_hash",
            "validation.ima-ng.not_in_allowlist"
        ]
    );

    // a key measured after the quoted position is used this round but not remembered
    let mut lagging = LogBuilder::new();
    lagging.file("/usr/bin/listed");
    let quoted = lagging.pcr(HashAlg::Sha256);
    lagging.ima_buf(".ima", &cert);
    lagging.ima_sig("/usr/bin/one", "sha256", &d1, &s1);
    let mut p = policy.clone();
    p.digests.insert(
        "/usr/bin/listed".into(),
        vec![common::hexs(&common::file_digest("/usr/bin/listed"))],
    );
    let p = prepare(&p);
    let v = check(
        &input(&lagging.text, 0, HashAlg::Sha256, &quoted, Some(&p)),
        &ImaState::default(),
    );
    assert!(v.passed(), "{:?}", v.failures);
    assert_eq!(v.next_state.next_entry, 1);
    assert_eq!(v.next_state.lag, 2);
    assert!(v.next_state.lagging);
    assert!(v.next_state.learned_keys.is_empty());
}
