//! `tls_dir = generate`: files, permissions, idempotence, repair, SANs.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use keylime_pki::{
    CaOptions, KeyAlgorithm, PkiError, ensure_generated, load_certs, load_or_create_agent_cert,
};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

fn ecdsa_opts() -> CaOptions {
    CaOptions {
        key_algorithm: KeyAlgorithm::EcdsaP256,
        ..Default::default()
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn sans(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

#[test]
fn creates_upstream_layout_with_private_permissions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cv_ca");
    let tls = ensure_generated(
        &dir,
        &ecdsa_opts(),
        &sans(&["127.0.0.1", "verifier.example", "::1"]),
        true,
    )
    .unwrap();
    for f in [
        "cacert.crt",
        "ca-private.pem",
        "server-cert.crt",
        "server-private.pem",
        "client-cert.crt",
        "client-private.pem",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert_eq!(mode(&dir), 0o700);
    for key in ["ca-private.pem", "server-private.pem", "client-private.pem"] {
        assert_eq!(mode(&dir.join(key)), 0o600, "{key}");
    }
    // No temp files left behind.
    let stray: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty());

    // Server cert: SANs, issuer = CA subject, CN "server".
    let server = load_certs(&tls.server_cert).unwrap().remove(0);
    let (_, cert) = X509Certificate::from_der(server.as_ref()).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::IPAddress(b) => format!("ip:{b:?}"),
            GeneralName::DNSName(d) => format!("dns:{d}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        vec![
            "ip:[127, 0, 0, 1]".to_string(),
            "dns:verifier.example".to_string(),
            format!("ip:{:?}", std::net::Ipv6Addr::LOCALHOST.octets()),
        ]
    );
    let ca = load_certs(&tls.ca_cert).unwrap().remove(0);
    let (_, ca_cert) = X509Certificate::from_der(ca.as_ref()).unwrap();
    assert_eq!(cert.issuer(), ca_cert.subject());
    assert!(ca_cert.is_ca());
    let subject = ca_cert.subject().to_string();
    for part in [
        "C=US",
        "ST=MA",
        "L=Lexington",
        "O=Keylime",
        "OU=53",
        "CN=Keylime Certificate Authority",
    ] {
        assert!(subject.contains(part), "{subject} lacks {part}");
    }
    assert_eq!(
        keylime_pki::peer_common_name(&load_certs(tls.client_cert.as_ref().unwrap()).unwrap()[0]),
        Some("client".into())
    );
    // Lifetime: cert_lifetime 365 days (+1h backdating).
    let span = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert_eq!(span, 365 * 86_400 + 3600);
    // Verifies with x509-parser's own signature check against the CA key.
    cert.verify_signature(Some(ca_cert.public_key())).unwrap();
}

#[test]
fn second_run_changes_nothing_and_missing_files_are_reissued_by_same_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("reg_ca");
    let opts = ecdsa_opts();
    ensure_generated(&dir, &opts, &sans(&["127.0.0.1"]), false).unwrap();
    assert!(!dir.join("client-cert.crt").exists());
    let snapshot = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let ca1 = snapshot("cacert.crt");
    let server1 = snapshot("server-cert.crt");
    let key1 = snapshot("server-private.pem");

    ensure_generated(&dir, &opts, &sans(&["127.0.0.1"]), false).unwrap();
    assert_eq!(snapshot("cacert.crt"), ca1);
    assert_eq!(snapshot("server-cert.crt"), server1);
    assert_eq!(snapshot("server-private.pem"), key1);

    // Lose the server key (a crash between writes, an operator's rm): reissued,
    // CA untouched, and the new cert is signed by the existing CA.
    std::fs::remove_file(dir.join("server-private.pem")).unwrap();
    let tls = ensure_generated(&dir, &opts, &sans(&["127.0.0.1"]), true).unwrap();
    assert_eq!(snapshot("cacert.crt"), ca1);
    assert_ne!(snapshot("server-cert.crt"), server1);
    assert!(tls.client_cert.as_ref().unwrap().is_file());
    let ca = load_certs(&tls.ca_cert).unwrap().remove(0);
    let (_, ca) = X509Certificate::from_der(ca.as_ref()).unwrap();
    for leaf in [&tls.server_cert, tls.client_cert.as_ref().unwrap()] {
        let der = load_certs(leaf).unwrap().remove(0);
        let (_, c) = X509Certificate::from_der(der.as_ref()).unwrap();
        c.verify_signature(Some(ca.public_key())).unwrap();
        assert_eq!(c.issuer().as_raw(), ca.subject().as_raw());
    }

    // Mismatched pair (server key replaced by client key): reissued.
    std::fs::copy(
        dir.join("client-private.pem"),
        dir.join("server-private.pem"),
    )
    .unwrap();
    let before = snapshot("server-cert.crt");
    ensure_generated(&dir, &opts, &sans(&["127.0.0.1"]), true).unwrap();
    assert_ne!(snapshot("server-cert.crt"), before);
    assert_eq!(snapshot("cacert.crt"), ca1);
}

#[test]
fn existing_ca_without_key_cannot_issue() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cv_ca");
    ensure_generated(&dir, &ecdsa_opts(), &[], false).unwrap();
    std::fs::remove_file(dir.join("ca-private.pem")).unwrap();
    // Everything present: fine without the CA key.
    ensure_generated(&dir, &ecdsa_opts(), &[], false).unwrap();
    std::fs::remove_file(dir.join("server-cert.crt")).unwrap();
    let err = ensure_generated(&dir, &ecdsa_opts(), &[], false).unwrap_err();
    assert!(matches!(err, PkiError::KeyLoad { .. }), "{err}");
    assert!(err.to_string().contains("ca-private.pem"), "{err}");
}

#[test]
fn rsa_default_ca_uses_cert_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cv_ca");
    let opts = CaOptions::default();
    assert_eq!(opts.key_algorithm, KeyAlgorithm::Rsa);
    let tls = ensure_generated(&dir, &opts, &sans(&["localhost"]), false).unwrap();
    let der = load_certs(&tls.server_cert).unwrap().remove(0);
    let (_, c) = X509Certificate::from_der(der.as_ref()).unwrap();
    assert_eq!(
        c.public_key().algorithm.algorithm.to_id_string(),
        "1.2.840.113549.1.1.1"
    );
    match c.public_key().parsed().unwrap() {
        x509_parser::public_key::PublicKey::RSA(k) => assert_eq!(k.key_size(), 2048),
        other => panic!("not RSA: {other:?}"),
    }
    // Reload path: reissue with the RSA CA loaded from disk.
    std::fs::remove_file(&tls.server_cert).unwrap();
    ensure_generated(&dir, &opts, &sans(&["localhost"]), false).unwrap();
    assert!(tls.server_cert.is_file());
    // Bad options are rejected with the option's name.
    let bad = CaOptions {
        cert_bits: 1024,
        ..Default::default()
    };
    let err = ensure_generated(&tmp.path().join("x"), &bad, &[], false).unwrap_err();
    assert!(err.to_string().contains("cert_bits"), "{err}");
}

#[test]
fn agent_cert_is_created_once_and_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let cert = tmp.path().join("secure/server-cert.crt");
    let key = tmp.path().join("secure/server-private.pem");
    let uuid = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000";
    let (c1, k1) = load_or_create_agent_cert(&cert, &key, uuid, &sans(&["127.0.0.1"])).unwrap();
    assert_eq!(mode(&key), 0o600);
    let (c2, k2) = load_or_create_agent_cert(&cert, &key, uuid, &sans(&["127.0.0.1"])).unwrap();
    assert_eq!((c1.clone(), k1.clone()), (c2, k2));
    let der = keylime_pki::pem_or_der_to_der_list(c1.as_bytes())
        .unwrap()
        .remove(0);
    let (_, parsed) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(
        keylime_pki::peer_common_name(&der.clone().into()).as_deref(),
        Some(uuid)
    );
    assert_eq!(
        parsed.public_key().algorithm.algorithm.to_id_string(),
        "1.2.840.10045.2.1"
    );
    // Self-signed.
    parsed.verify_signature(None).unwrap();
    // Another agent id: replaced.
    let (c3, _) =
        load_or_create_agent_cert(&cert, &key, "other-agent", &sans(&["127.0.0.1"])).unwrap();
    assert_ne!(c3, c1);
}

#[test]
fn invalid_san_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let err = ensure_generated(
        &tmp.path().join("d"),
        &ecdsa_opts(),
        &sans(&["bad\u{e9}name"]),
        false,
    )
    .unwrap_err();
    assert!(err.to_string().contains("bad\u{e9}name"), "{err}");
}

#[test]
fn concurrent_generation_yields_one_consistent_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cv_ca");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                ensure_generated(&dir, &ecdsa_opts(), &sans(&["127.0.0.1"]), true).unwrap()
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    let ca = load_certs(&dir.join("cacert.crt")).unwrap().remove(0);
    let (_, ca) = X509Certificate::from_der(ca.as_ref()).unwrap();
    // The CA key on disk belongs to the CA certificate on disk.
    let key_pem = std::fs::read_to_string(dir.join("ca-private.pem")).unwrap();
    let key = rcgen::KeyPair::from_pem(&key_pem).unwrap();
    assert_eq!(ca.public_key().raw, key.public_key_der().as_slice());
    for leaf in ["server-cert.crt", "client-cert.crt"] {
        let der = load_certs(&dir.join(leaf)).unwrap().remove(0);
        let (_, c) = X509Certificate::from_der(der.as_ref()).unwrap();
        c.verify_signature(Some(ca.public_key())).unwrap();
    }
}
