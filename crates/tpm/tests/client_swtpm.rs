//! The TPM client against a private swtpm: EK/AK lifecycle, MakeCredential (ours) →
//! ActivateCredential (the TPM's), quotes verified in software, PCR operations and handle
//! hygiene.

use keylime_testkit::Swtpm;
use keylime_tpm::command::handle;
use keylime_tpm::{
    Attest, AttestBody, EkAlg, HashAlg, KeyHandle, PcrSelection, Public, SignAlg, Signature, Tcti,
    Tpm, make_credential, pcr_blob, pcr_digest, quote, verify_signature,
};

fn open(swtpm: &Swtpm) -> Tpm {
    Tpm::open(&Tcti::parse(&swtpm.tcti_string()).unwrap()).unwrap()
}

const CREDENTIAL: &[u8] = b"0123456789abcdefghijABCDEFGHIJkl";

fn activate_round_trip(ek_alg: EkAlg, hash: HashAlg, sign: SignAlg) {
    let swtpm = Swtpm::start();
    let mut tpm = open(&swtpm);
    let ek = tpm.create_ek(ek_alg).unwrap();
    let ak_blob = tpm.create_ak(&ek, hash, sign).unwrap();
    let ak = tpm.load_ak(&ek, &ak_blob).unwrap();
    assert_eq!(ak.public.scheme.and_then(|s| s.sign_alg()), Some(sign));

    // The EK as the registrar sees it: only its TPM2B_PUBLIC.
    let ek_public = Public::from_tpm2b(&ek.public.to_tpm2b()).unwrap();
    let ak_public = Public::from_tpm2b(&ak_blob.public).unwrap();
    let blob = make_credential(&ek_public, &ak_public.name(), CREDENTIAL).unwrap();
    let got = tpm
        .activate_credential(&ak, &ek, &blob.id_object, &blob.encrypted_secret)
        .unwrap();
    assert_eq!(got, CREDENTIAL);

    // Bound to the AK's name: the same blob fails for another name.
    let other_name = {
        let mut n = ak_public.name();
        let last = n.len() - 1;
        n[last] ^= 1;
        n
    };
    let wrong = make_credential(&ek_public, &other_name, CREDENTIAL).unwrap();
    let err = tpm
        .activate_credential(&ak, &ek, &wrong.id_object, &wrong.encrypted_secret)
        .unwrap_err();
    assert!(err.response_code().is_some(), "{err}");
}

#[test]
fn make_credential_activates_with_rsa_ek() {
    activate_round_trip(EkAlg::Rsa2048, HashAlg::Sha256, SignAlg::RsaSsa);
}

#[test]
fn make_credential_activates_with_ecc_ek() {
    activate_round_trip(EkAlg::EccP256, HashAlg::Sha256, SignAlg::Ecdsa);
}

/// Qualified name of an object under the endorsement hierarchy:
/// `QN(child) = nameAlg || H(QN(parent) || Name(child))`, `QN(hierarchy) = handle`.
fn qualified_name(parents: &[&Public]) -> Vec<u8> {
    let mut qn = 0x4000_000Bu32.to_be_bytes().to_vec();
    for p in parents {
        let mut next = p.name_alg.tpm_id().to_be_bytes().to_vec();
        next.extend(p.name_alg.digest_parts(&[&qn, &p.name()]));
        qn = next;
    }
    qn
}

fn quote_and_verify(tpm: &mut Tpm, ek: &KeyHandle, ak: &KeyHandle, sign: SignAlg, bank: HashAlg) {
    let selection = PcrSelection::new(bank, [0, 1, 2, 16]).unwrap();
    let nonce = b"abcdefghij0123456789";
    let q = tpm.quote(ak, nonce, &selection, sign).unwrap();
    let sig = Signature::parse(&q.signature).unwrap();
    assert_eq!(sig.sign_alg(), sign);
    verify_signature(&ak.public, &q.attest, &sig).unwrap();
    let mut tampered = q.attest.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(verify_signature(&ak.public, &tampered, &sig).is_err());

    let attest = Attest::parse(&q.attest).unwrap();
    assert_eq!(attest.extra_data, nonce);
    assert_eq!(
        attest.qualified_signer,
        qualified_name(&[&ek.public, &ak.public]),
        "quote signer is the AK under the EK"
    );
    let AttestBody::Quote {
        pcr_select,
        pcr_digest: digest,
    } = attest.body
    else {
        panic!("not a quote")
    };
    assert_eq!(pcr_select, vec![selection.clone()]);
    let values = tpm.pcr_read(&selection).unwrap();
    assert_eq!(pcr_digest(sig.hash(), &values), digest);

    // The Keylime quote string carries it all and decodes back.
    let blob = pcr_blob::encode(&selection, &values).unwrap();
    let s = quote::encode_quote_string(&q.attest, &q.signature, &blob);
    let parts = quote::decode_quote_string(&s).unwrap();
    assert_eq!(
        pcr_blob::decode(&parts.pcr_blob).unwrap(),
        (vec![selection], values)
    );
}

#[test]
fn quotes_verify_for_rsa_and_ecc_aks() {
    let swtpm = Swtpm::start();
    let mut tpm = open(&swtpm);
    let ek = tpm.create_ek(EkAlg::Rsa2048).unwrap();
    for (hash, sign) in [
        (HashAlg::Sha256, SignAlg::RsaSsa),
        (HashAlg::Sha256, SignAlg::Ecdsa),
        (HashAlg::Sha384, SignAlg::Ecdsa),
        (HashAlg::Sha256, SignAlg::RsaPss),
    ] {
        let blob = tpm.create_ak(&ek, hash, sign).unwrap();
        let ak = tpm.load_ak(&ek, &blob).unwrap();
        quote_and_verify(&mut tpm, &ek, &ak, sign, HashAlg::Sha256);
        quote_and_verify(&mut tpm, &ek, &ak, sign, HashAlg::Sha1);
        tpm.flush(ak).unwrap();
    }
}

#[test]
fn pcr_extend_reset_and_long_reads() {
    let swtpm = Swtpm::start();
    let mut tpm = open(&swtpm);
    let banks = tpm.pcr_banks().unwrap();
    assert!(banks.contains(&HashAlg::Sha256), "{banks:?}");
    for bank in banks {
        let sel16 = PcrSelection::new(bank, [16]).unwrap();
        tpm.pcr_reset(16).unwrap();
        assert_eq!(
            tpm.pcr_read(&sel16).unwrap(),
            vec![vec![0u8; bank.digest_len()]]
        );
        let digest = bank.digest(b"-----BEGIN PUBLIC KEY-----\n");
        tpm.pcr_extend(16, bank, &digest).unwrap();
        let expected = bank.digest_parts(&[&vec![0u8; bank.digest_len()], &digest]);
        assert_eq!(tpm.pcr_read(&sel16).unwrap(), vec![expected]);
        tpm.pcr_reset(16).unwrap();
        assert_eq!(
            tpm.pcr_read(&sel16).unwrap(),
            vec![vec![0u8; bank.digest_len()]]
        );

        // All 24 PCRs need several PCR_Read rounds (at most 8 digests each).
        let all = PcrSelection::new(bank, 0..24).unwrap();
        let values = tpm.pcr_read(&all).unwrap();
        assert_eq!(values.len(), 24);
        assert!(values.iter().all(|v| v.len() == bank.digest_len()));
    }
    assert!(tpm.pcr_extend(16, HashAlg::Sha256, &[0; 20]).is_err());
}

#[test]
fn random_capabilities_and_algorithms() {
    let swtpm = Swtpm::start();
    let mut tpm = open(&swtpm);
    let a = tpm.get_random(100).unwrap();
    let b = tpm.get_random(100).unwrap();
    assert_eq!(a.len(), 100);
    assert_ne!(a, b);
    let algs = tpm.supported_algorithms().unwrap();
    for alg in [0x0001u16, 0x000B, 0x0023, 0x0006, 0x0043] {
        assert!(algs.contains(&alg), "0x{alg:04x} missing from {algs:x?}");
    }
}

#[test]
fn repeated_quote_cycles_leak_no_handles() {
    let swtpm = Swtpm::start();
    let mut tpm = open(&swtpm);
    let ek = tpm.create_ek(EkAlg::EccP256).unwrap();
    let blob = tpm.create_ak(&ek, HashAlg::Sha256, SignAlg::Ecdsa).unwrap();
    let baseline_objects = tpm.handles(handle::TRANSIENT_FIRST).unwrap().len();
    assert_eq!(baseline_objects, 1, "only the EK is loaded");
    let selection = PcrSelection::new(HashAlg::Sha256, [16]).unwrap();
    for i in 0..10u8 {
        let ak = tpm.load_ak(&ek, &blob).unwrap();
        tpm.quote(&ak, &[i; 20], &selection, SignAlg::Ecdsa)
            .unwrap();
        // A failing command that used a policy session must not leak the session.
        assert!(
            tpm.activate_credential(&ak, &ek, &[0; 10], &[0; 10])
                .is_err()
        );
        tpm.flush(ak).unwrap();
    }
    assert_eq!(
        tpm.handles(handle::TRANSIENT_FIRST).unwrap().len(),
        baseline_objects
    );
    assert!(
        tpm.handles(handle::LOADED_SESSION_FIRST)
            .unwrap()
            .is_empty()
    );
    tpm.flush_all().unwrap();
    assert!(tpm.handles(handle::TRANSIENT_FIRST).unwrap().is_empty());
}

/// Run a tpm2-tools command against the swtpm; panics loudly if it fails or is missing.
fn tpm2_tool(swtpm: &Swtpm, args: &[&str], dir: &std::path::Path) -> String {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .env("TPM2TOOLS_TCTI", swtpm.tcti_string())
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{} (tpm2-tools) cannot run: {e}", args[0]));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn open_recovers_from_a_predecessor_that_left_objects_loaded() {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    // Other processes that exit without flushing (no resource manager): swtpm's three
    // object slots stay full.
    for i in 0..3 {
        let ctx = format!("primary{i}.ctx");
        tpm2_tool(
            &swtpm,
            &["tpm2_createprimary", "-C", "e", "-G", "ecc", "-c", &ctx],
            dir.path(),
        );
    }
    let listed = tpm2_tool(&swtpm, &["tpm2_getcap", "handles-transient"], dir.path());
    assert_eq!(listed.matches("0x80").count(), 3, "{listed}");
    // ... and a policy session that was started and never flushed.
    tpm2_tool(
        &swtpm,
        &["tpm2_startauthsession", "--policy-session", "-S", "s.ctx"],
        dir.path(),
    );
    let sessions = tpm2_tool(
        &swtpm,
        &["tpm2_getcap", "handles-saved-session"],
        dir.path(),
    );
    assert!(sessions.contains("0x"), "session left behind: {sessions:?}");

    let mut tpm = open(&swtpm);
    assert!(tpm.handles(handle::TRANSIENT_FIRST).unwrap().is_empty());
    assert!(
        tpm.handles(handle::LOADED_SESSION_FIRST)
            .unwrap()
            .is_empty()
    );
    assert!(tpm.handles(handle::SAVED_SESSION_FIRST).unwrap().is_empty());
    let ek = tpm.create_ek(EkAlg::Rsa2048).unwrap();
    let blob = tpm
        .create_ak(&ek, HashAlg::Sha256, SignAlg::RsaSsa)
        .unwrap();
    tpm.load_ak(&ek, &blob).unwrap();
    drop(tpm);

    // Our own client flushes what it loaded when dropped.
    let listed = tpm2_tool(&swtpm, &["tpm2_getcap", "handles-transient"], dir.path());
    assert!(!listed.contains("0x80"), "left behind: {listed}");
}

#[test]
fn certify_proves_the_ak_is_loaded() {
    let swtpm = Swtpm::start();
    let mut tpm = open(&swtpm);
    let ek = tpm.create_ek(EkAlg::Rsa2048).unwrap();
    let blob = tpm
        .create_ak(&ek, HashAlg::Sha256, SignAlg::RsaSsa)
        .unwrap();
    let ak = tpm.load_ak(&ek, &blob).unwrap();
    let out = tpm
        .certify(&ak, &ak, b"challenge", SignAlg::RsaSsa)
        .unwrap();
    let sig = Signature::parse(&out.signature).unwrap();
    verify_signature(&ak.public, &out.attest, &sig).unwrap();
    let attest = Attest::parse(&out.attest).unwrap();
    assert_eq!(attest.extra_data, b"challenge");
    let AttestBody::Certify { name, .. } = attest.body else {
        panic!("not a certify attestation")
    };
    assert_eq!(name, ak.public.name());
    assert!(
        tpm.certify(&ak, &ak, b"x", SignAlg::Ecdsa).is_err(),
        "scheme mismatch refused"
    );
}

#[test]
fn client_can_move_to_a_blocking_thread() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Tpm>();
    assert_send::<KeyHandle>();
}

#[test]
fn unreachable_tpms_are_transport_errors() {
    let err = Tpm::open(&Tcti::Device("/nonexistent/tpm0".into())).unwrap_err();
    assert!(
        matches!(err, keylime_tpm::TpmError::Transport { .. }),
        "{err}"
    );
    let port = keylime_testkit::ports::closed();
    let err = Tpm::open(&Tcti::Swtpm {
        host: "127.0.0.1".into(),
        port,
    })
    .unwrap_err();
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}
