//! Interoperability vectors produced by Python `cryptography` (the library upstream's
//! tenant and verifier use) with the published upstream test key
//! `testdata/keys/ima/keylime/rsa2048.pem`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keylime_payload::{
    PayloadError, parse_rsa_private_key_pem, parse_rsa_public_key_pem, revocation,
    rsa_oaep_sha1_decrypt,
};

fn testdata(rel: &str) -> String {
    let path = keylime_testkit::testdata(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `public_key().encrypt(b"U" * 32, OAEP(MGF1(SHA1), SHA1, label=None))`.
const PYTHON_OAEP: &str = "vCOjKH8MWT+Pd8pBNJ1YfxbvU/E4o5emoi2vwcvr+313h51WLjXUBWblJmsySu675YlGG9uvE5P0K7jqKT0Y2i38nv7D2fw5DaGOPtWk/aE1MHQ0Sluklw3IYrVeq0dDMScUCCSZ6wQ98IYr8HpyCHWjUbEh8tZVxrIYMZC5WouftdB1diNwj/IVHvCwozDOGFxDvyMojjRzHOEl8ngU2n5OUmYV65dWrP9ayEIBbRtfJUbzhDvk8eW3CoNR5gHOm2hEP3ee4qBzBWkZL9xwtgi5NhsdQbLH0jfT5JHy7gxtJ89Ciu/1l5Bq3FWxRC/JGwCK/jp/TVib+5L6j5ejPg==";

/// A self-signed certificate over the same key (CN=RevocationNotifier), as the
/// tenant's `--cert` payload carries `RevocationNotifier-cert.crt`.
const REVOCATION_CERT: &str = "
-----BEGIN CERTIFICATE-----
MIICszCCAZugAwIBAgIBATANBgkqhkiG9w0BAQsFADAdMRswGQYDVQQDDBJSZXZv
Y2F0aW9uTm90aWZpZXIwHhcNMjQwMTAxMDAwMDAwWhcNMzMxMjI5MDAwMDAwWjAd
MRswGQYDVQQDDBJSZXZvY2F0aW9uTm90aWZpZXIwggEiMA0GCSqGSIb3DQEBAQUA
A4IBDwAwggEKAoIBAQDVwPttbm1fmohWBayRLm3Nj5empbNxbocWrmemPx0cUhaw
AkkJR2hJTrfWGTJjwc/9F9cM+r8ngh4q/HfkRVePj23VnUVMkGBSURuQq+qbStjq
Ojs+cnoGwNGtq5e2IRdUo1dxZcOTwRL72/0LPboElgCv7leCbZoTIBuPwaGJzFRl
+yMObx4ntmdAq6EXuN6Mbl1gBjGcFW731tAkcjkWy7d0CMZvKz2/tOg1uidL7Vsl
d0fIQTSzCHEE4++9Xq/HkLNE3DVKi7etPX1PiPzCmwU7JhdVxttFUECYETZDLZQe
+iMWpok38D2XO2WXIRHVLmF4YboLErcahHqmQ5cBAgMBAAEwDQYJKoZIhvcNAQEL
BQADggEBAH2vufZpiTgKMtYJb5cANj0kp3vCygMEOR5vAVH7Eg+hOgofo/Sl71iR
X7koTb2N24JWj2RrLWKoynYWVAXGhjUa1plZBXvfu+d2yvt27zlYj9XDhZktkmgS
idZOOOUihqFHD5EFh71VSB4DG5rnDI00PAKy/nTI/0vpBUYpoYAGeMfsGPOpnEv7
q3IZdzA8moB4y7qKAwxrEBzQ17DDi6oQ7o5sonHI+fX+DyGk96go32e/f0t1wCv/
TpDKqWF99fAMImDpsHsVkp31t6mQGvyL+vZ/A5Y0aaTN7cwEv7XMoKCyBNSzLCnQ
y6re0lCgaAmd8uN4plwfGDMKqtaqgHI=
-----END CERTIFICATE-----
";

#[test]
fn decrypts_python_oaep_sha1() {
    let key = parse_rsa_private_key_pem(&testdata("keys/ima/keylime/rsa2048.pem")).expect("key");
    let ct = STANDARD.decode(PYTHON_OAEP).expect("b64");
    assert_eq!(
        rsa_oaep_sha1_decrypt(&key, &ct).expect("decrypt"),
        [b'U'; 32]
    );
}

#[test]
fn revocation_verifies_with_certificate() {
    let key_pem = testdata("keys/ima/keylime/rsa2048.pem");
    let msg = r#"{"type":"revocation","agent_id":"a"}"#;
    let sig = revocation::sign(msg, &key_pem).expect("sign");
    revocation::verify(msg, &sig, REVOCATION_CERT).expect("verify with certificate");
    let cert_key = parse_rsa_public_key_pem(REVOCATION_CERT).expect("cert key");
    let pub_key =
        parse_rsa_public_key_pem(&testdata("keys/ima/keylime/rsa2048pub.pem")).expect("pubkey");
    assert_eq!(cert_key, pub_key);
}

#[test]
fn non_rsa_and_wrong_block_types_are_typed_errors() {
    let ec = testdata("keys/ima/keylime/secp256k1.pem");
    assert!(parse_rsa_private_key_pem(&ec).is_err());
    assert!(matches!(
        parse_rsa_public_key_pem(&ec),
        Err(PayloadError::Pem { .. })
    ));
    assert!(parse_rsa_public_key_pem("").is_err());
}
