//! `keylime-policy sign runtime` through the binary: envelopes verify with the key written
//! or given, x509 envelopes with their certificate, and bad input is refused.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine as _;
use common::{fails, run_in, stderr, stdout, td_str};
use keylime_ima::policy::{DsseEnvelope, DsseKey, KEYLIME_PAYLOAD_TYPE, verify};

const POLICY: &str = "policy/keylime/sign-runtime-policy/runtime-policy.json";

fn sign_in(cwd: &Path, args: &[&str]) -> DsseEnvelope {
    let mut full = vec!["sign", "runtime"];
    full.extend_from_slice(args);
    let o = run_in(cwd, &full);
    assert!(o.status.success(), "{full:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("envelope JSON")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn generated_key_round_trip() {
    let dir = tempfile::tempdir().expect("tmp");
    let policy = td_str(POLICY);
    let env = sign_in(dir.path(), &["-r", &policy, "-p", "my-key.pem"]);
    let key_path = dir.path().join("my-key.pem");
    let mode = std::fs::metadata(&key_path)
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let pem = read(&key_path);
    assert!(pem.starts_with("-----BEGIN EC PRIVATE KEY-----\n"), "{pem}");
    let signer = keylime_ima::policy::EcdsaSigningKey::from_pem(&pem).expect("P-256 key");
    let public = signer.public_key();
    assert_eq!(env.payload_type, KEYLIME_PAYLOAD_TYPE);
    assert_eq!(env.signatures.len(), 1);
    assert_eq!(env.signatures[0].keyid, public.keyid());
    let payload = verify(&env, std::slice::from_ref(&public)).expect("verifies");
    assert_eq!(payload, std::fs::read(td_str(POLICY)).expect("policy"));

    // a tampered payload no longer verifies
    let mut tampered = env.clone();
    let text = String::from_utf8(payload)
        .expect("utf8")
        .replace("\"release\": 0", "\"release\": 1");
    tampered.payload = base64::engine::general_purpose::STANDARD.encode(text);
    assert!(verify(&tampered, &[public]).is_err());

    // the generated key is never overwritten
    let o = run_in(
        dir.path(),
        &["sign", "runtime", "-r", &policy, "-p", "my-key.pem"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("refusing to overwrite"),
        "{}",
        stderr(&o)
    );
    assert_eq!(read(&key_path), pem);

    // signing again with that key (-k) gives an envelope the same key verifies
    let again = sign_in(dir.path(), &["-r", &policy, "-k", "my-key.pem"]);
    assert_eq!(again.signatures[0].keyid, env.signatures[0].keyid);
}

#[test]
fn default_key_file_and_output_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let policy = td_str("policy/keylime/sign-runtime-policy/runtime-policy-empty.json");
    let o = run_in(
        dir.path(),
        &["sign", "runtime", "-r", &policy, "-o", "signed.json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let pem = read(&dir.path().join("keylime-ecdsa-key.pem"));
    let key = keylime_ima::policy::EcdsaSigningKey::from_pem(&pem)
        .expect("generated key")
        .public_key();
    let text = read(&dir.path().join("signed.json"));
    assert!(text.starts_with(r#"{"payload": ""#), "{text}");
    let env: DsseEnvelope = serde_json::from_str(&text).expect("envelope");
    verify(&env, &[key]).expect("verifies");
}

#[test]
fn given_p521_key_verifies_with_its_public_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = sign_in(
        dir.path(),
        &[
            "-r",
            &td_str(POLICY),
            "-k",
            &td_str("policy/keylime/sign-runtime-policy/ec-p521-private.pem"),
        ],
    );
    let public = DsseKey::from_pem(&read(Path::new(&td_str(
        "policy/keylime/sign-runtime-policy/ec-p521-public.pem",
    ))))
    .expect("public key");
    assert_eq!(env.signatures[0].keyid, public.keyid());
    verify(&env, &[public]).expect("verifies");
    // and not with upstream's P-256 test key
    let other = DsseKey::from_pem(&read(Path::new(&td_str(
        "policy/keylime/runtime-policy-pubkey.pub",
    ))))
    .expect("key");
    assert!(verify(&env, &[other]).is_err());
    assert!(
        std::fs::read_dir(dir.path()).expect("dir").next().is_none(),
        "no key written"
    );
}

#[test]
fn x509_backend_writes_a_certificate_that_verifies() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = sign_in(
        dir.path(),
        &[
            "-r",
            &td_str(POLICY),
            "-b",
            "X509",
            "-c",
            "cert.pem",
            "-p",
            "x509-key.pem",
        ],
    );
    let cert_pem = read(&dir.path().join("cert.pem"));
    let cert = DsseKey::from_pem(&cert_pem).expect("certificate");
    assert_eq!(env.signatures[0].keyid, cert.keyid());
    // the keyid is the certificate PEM in base64, which upstream verifies with
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&env.signatures[0].keyid)
        .expect("b64");
    assert_eq!(decoded, cert_pem.as_bytes());
    verify(&env, &[cert]).expect("verifies with the certificate");
    let embedded = DsseKey::from_envelope_certificates(&env).expect("embedded");
    verify(&env, &embedded).expect("verifies with the embedded certificate");
    let (_, parsed) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).expect("pem");
    let parsed = parsed.parse_x509().expect("x509");
    assert_eq!(parsed.subject().to_string(), "CN=dsse_lib");
    assert_eq!(parsed.issuer().to_string(), "CN=dsse_lib");
}

#[test]
fn bad_requests_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let policy = td_str(POLICY);
    fails(
        &[
            "sign", "runtime", "-r", &policy, "-k", "a.pem", "-p", "b.pem",
        ],
        1,
        "only one of --keyfile and --keypath",
    );
    fails(
        &["sign", "runtime", "-r", &policy, "-b", "x509"],
        1,
        "--cert-outfile",
    );
    fails(&["sign", "runtime", "-r", &policy, "-b", "rsa"], 2, "rsa");
    fails(&["sign", "runtime"], 2, "--runtime-policy");
    fails(
        &[
            "sign",
            "runtime",
            "-r",
            &policy,
            "-k",
            &td_str("policy/keylime/sign-runtime-policy/rsa-4096-private.pem"),
        ],
        1,
        "elliptic curve",
    );
    fails(
        &[
            "sign",
            "runtime",
            "-r",
            &policy,
            "-k",
            "/nonexistent/key.pem",
        ],
        1,
        "/nonexistent/key.pem",
    );
    let tmp = dir.path().to_str().expect("utf8").to_owned();
    for bad in [
        "policy/keylime/sign-runtime-policy/runtime-policy-bogus.json",
        "policy/keylime/runtime-policy-test-signed.json",
        "policy/keylime-tests/create-policy-static-data/test4/allowlist-1",
    ] {
        let key = format!("{tmp}/never.pem");
        fails(
            &["sign", "runtime", "-r", &td_str(bad), "-p", &key],
            1,
            "unable to validate",
        );
        assert!(
            !Path::new(&key).exists(),
            "no key is generated for a bad policy"
        );
    }
    fails(
        &["sign", "runtime", "-r", "/nonexistent/policy.json"],
        1,
        "/nonexistent/policy.json",
    );
    // P-521 keys cannot make the x509 backend's certificate
    fails(
        &[
            "sign",
            "runtime",
            "-r",
            &policy,
            "-b",
            "x509",
            "-c",
            &format!("{tmp}/c.pem"),
            "-k",
            &td_str("policy/keylime/sign-runtime-policy/ec-p521-private.pem"),
        ],
        1,
        "P-521",
    );
}
