//! The quote itself through the engine: good quotes pass for RSA and ECC AKs; every way a
//! quote can be wrong is one irrecoverable failure event with upstream's id; malformed
//! input never panics.

mod common;

use common::*;
use keylime_attestation::{
    AgentState, ClockTransition, Nonce, Outcome, QuoteEvidence, Verdict, attest,
};
use keylime_tpm::{HashAlg, SignAlg, quote::encode_quote_string};

fn run(ak: &SoftAk, quote: &str) -> Verdict {
    let policy = prepare(&agent_policy(ak, ""));
    attest(
        &evidence(ak, quote),
        &Nonce::Text(NONCE.into()),
        &policy,
        &AgentState::default(),
    )
}

/// The single event of a failed verdict: (id, recoverable, context).
fn single_event(v: &Verdict) -> (String, bool, serde_json::Value) {
    let f = v
        .failure()
        .unwrap_or_else(|| panic!("expected failure, got {v:?}"));
    assert_eq!(f.events.len(), 1, "{:?}", f.event_ids());
    let e = &f.events[0];
    (e.event_id.clone(), e.recoverable, e.context.clone())
}

fn assert_quote_invalid(v: &Verdict, error_contains: &str) {
    let (id, recoverable, ctx) = single_event(v);
    assert_eq!(id, "qoute_validation.quote_validation");
    assert!(!recoverable);
    assert_eq!(ctx["message"], "Quote data validation");
    let err = ctx["error"].as_str().unwrap_or_default();
    assert!(
        err.contains(error_contains),
        "error {err:?} lacks {error_contains:?}"
    );
    let top = v
        .failure()
        .and_then(|f| f.highest_severity_event())
        .unwrap();
    assert_eq!(
        (top.severity_label.as_str(), top.severity_level),
        ("emergency", 6)
    );
    assert_eq!(v.next_state.attestation_count, 0);
    assert_eq!(v.next_state.tpm_clockinfo, None);
}

#[test]
fn good_quotes_pass_for_rsa_and_ecc() {
    for ak in [SoftAk::rsa(), SoftAk::p256()] {
        let q = QuoteBuilder::new();
        let v = run(&ak, &q.build(&ak));
        assert_eq!(v.outcome, Outcome::Pass, "{:?}", v.failure());
        let pcrs = v.pcrs.as_ref().unwrap();
        assert_eq!(pcrs.bank, HashAlg::Sha256);
        assert_eq!(pcrs.hex(7), Some("77".repeat(32).as_str()));
        assert_eq!(pcrs.values.len(), 3);
        assert_eq!(v.clock_transition, Some(ClockTransition::FirstQuote));
        assert_eq!(v.next_state.attestation_count, 1);
        assert_eq!(v.next_state.tpm_clockinfo.map(|c| c.clock), Some(1000));
        assert_eq!(v.next_state.sign_alg.as_deref(), Some(ak.scheme().name()));
    }
}

#[test]
fn sha384_quote_with_sha384_reported_passes() {
    let ak = SoftAk::p256();
    let mut q = QuoteBuilder::new();
    q.bank = HashAlg::Sha384;
    q.sig_hash = HashAlg::Sha384;
    q.pcrs = [(0, pcr(HashAlg::Sha384, 1)), (16, pcr(HashAlg::Sha384, 2))].into();
    let quote = q.build(&ak);
    let mut ev = evidence(&ak, &quote);
    ev.hash_alg = "sha384".into();
    let policy = prepare(&agent_policy(&ak, ""));
    let v = attest(
        &ev,
        &Nonce::Text(NONCE.into()),
        &policy,
        &AgentState::default(),
    );
    assert!(v.passed(), "{:?}", v.failure());
    assert_eq!(v.pcrs.unwrap().bank, HashAlg::Sha384);
}

#[test]
fn unaccepted_algorithms_have_their_own_events() {
    let ak = SoftAk::rsa();
    let quote = QuoteBuilder::new().build(&ak);
    let cases = [
        (
            "sha1",
            "rsa",
            "rsassa",
            "qoute_validation.invalid_hash_alg",
            "sha1",
        ),
        (
            "sha256",
            "rsa3072",
            "rsassa",
            "qoute_validation.invalid_enc_alg",
            "rsa3072",
        ),
        (
            "sha256",
            "ecc",
            "ecschnorr",
            "qoute_validation.invalid_sign_alg",
            "ecschnorr",
        ),
        ("", "rsa", "rsassa", "qoute_validation.invalid_hash_alg", ""),
    ];
    let policy = prepare(&agent_policy(&ak, ""));
    for (h, e, s, id, data) in cases {
        let ev = QuoteEvidence {
            hash_alg: h.into(),
            enc_alg: e.into(),
            sign_alg: s.into(),
            ..evidence(&ak, &quote)
        };
        let v = attest(
            &ev,
            &Nonce::Text(NONCE.into()),
            &policy,
            &AgentState::default(),
        );
        let (got_id, recoverable, ctx) = single_event(&v);
        assert_eq!((got_id.as_str(), recoverable), (id, false));
        assert_eq!(ctx["data"], data);
    }
    // `rsa` in the evidence is accepted by `rsa2048` in the policy and vice versa.
    let ev = QuoteEvidence {
        enc_alg: "rsa".into(),
        ..evidence(&ak, &quote)
    };
    let v = attest(
        &ev,
        &Nonce::Text(NONCE.into()),
        &policy,
        &AgentState::default(),
    );
    assert!(v.passed(), "{:?}", v.failure());
}

#[test]
fn wrong_nonce_fails() {
    let ak = SoftAk::rsa();
    let mut q = QuoteBuilder::new();
    q.nonce = b"abcdefghij0123456780".to_vec();
    assert_quote_invalid(&run(&ak, &q.build(&ak)), "nonce");
}

#[test]
fn push_challenge_bytes_and_their_b64_text_pass() {
    let ak = SoftAk::p256();
    let challenge = vec![0x01, 0xFE, 0x33, 0x00, 0x9A];
    let policy = prepare(&agent_policy(&ak, ""));
    for extra in [challenge.clone(), b"Af4zAJo=".to_vec()] {
        let mut q = QuoteBuilder::new();
        q.nonce = extra;
        let quote = q.build(&ak);
        let v = attest(
            &evidence(&ak, &quote),
            &Nonce::Bytes(challenge.clone()),
            &policy,
            &AgentState::default(),
        );
        assert!(v.passed(), "{:?}", v.failure());
    }
}

#[test]
fn tampered_attest_byte_fails_the_signature() {
    for ak in [SoftAk::rsa(), SoftAk::p256()] {
        let q = QuoteBuilder::new();
        let (mut a, s, b) = q.parts(&ak);
        // A firmware version byte (before the 10-byte selection and 34-byte digest):
        // still a well-formed TPMS_ATTEST.
        let at = a.len() - 48;
        a[at] ^= 0x01;
        assert_quote_invalid(
            &run(&ak, &encode_quote_string(&a, &s, &b)),
            "does not verify",
        );
    }
}

#[test]
fn tampered_pcr_value_in_blob_fails_the_digest() {
    let ak = SoftAk::rsa();
    let q = QuoteBuilder::new();
    let (a, s, mut b) = q.parts(&ak);
    // First digest of the first TPML_DIGEST: offset 136 + 4 (count) + 2 (size).
    b[142] ^= 0xFF;
    assert_quote_invalid(
        &run(&ak, &encode_quote_string(&a, &s, &b)),
        "digest used for quoting is different",
    );
}

#[test]
fn relabelled_pcrs_in_blob_are_refused() {
    let ak = SoftAk::rsa();
    let q = QuoteBuilder::new();
    let (a, s, _) = q.parts(&ak);
    // Same values in the same order, but claimed as PCRs 0, 1, 8 instead of 0, 1, 7.
    let mut relabelled = q.clone();
    let v7 = relabelled.pcrs.remove(&7).unwrap();
    relabelled.pcrs.insert(8, v7);
    let v = run(&ak, &encode_quote_string(&a, &s, &relabelled.blob()));
    assert_quote_invalid(&v, "selects PCRs [0, 1, 8] but the TPM quoted [0, 1, 7]");
}

#[test]
fn blob_in_another_bank_is_refused() {
    let ak = SoftAk::rsa();
    let q = QuoteBuilder::new();
    let (a, s, _) = q.parts(&ak);
    let mut sha1 = q.clone();
    sha1.bank = HashAlg::Sha1;
    sha1.pcrs = [
        (0, pcr(HashAlg::Sha1, 0)),
        (1, pcr(HashAlg::Sha1, 0x11)),
        (7, pcr(HashAlg::Sha1, 0x77)),
    ]
    .into();
    let v = run(&ak, &encode_quote_string(&a, &s, &sha1.blob()));
    assert_quote_invalid(&v, "exactly one selection in the sha256 bank");
}

#[test]
fn rsapss_quotes_are_refused() {
    let ak = SoftAk::rsa();
    let mut q = QuoteBuilder::new();
    q.scheme = Some(SignAlg::RsaPss);
    let quote = q.build(&ak);
    // Even when the agent honestly reports rsapss and the tenant accepts it.
    let ev = QuoteEvidence {
        sign_alg: "rsapss".into(),
        ..evidence(&ak, &quote)
    };
    let policy = prepare(&agent_policy(&ak, ""));
    let v = attest(
        &ev,
        &Nonce::Text(NONCE.into()),
        &policy,
        &AgentState::default(),
    );
    assert_quote_invalid(
        &v,
        "unsupported quote signature algorithm 'rsapss' for RSA keys",
    );
}

#[test]
fn signature_hash_must_match_reported_hash_alg() {
    let ak = SoftAk::rsa();
    let mut q = QuoteBuilder::new();
    q.sig_hash = HashAlg::Sha384;
    let v = run(&ak, &q.build(&ak));
    assert_quote_invalid(&v, "expected to use sha256 but used sha384");
}

#[test]
fn reported_sign_alg_must_match_the_signature() {
    let ak = SoftAk::p256();
    let quote = QuoteBuilder::new().build(&ak);
    let ev = QuoteEvidence {
        sign_alg: "rsassa".into(),
        ..evidence(&ak, &quote)
    };
    let policy = prepare(&agent_policy(&ak, ""));
    let v = attest(
        &ev,
        &Nonce::Text(NONCE.into()),
        &policy,
        &AgentState::default(),
    );
    assert_quote_invalid(
        &v,
        "reported sign_alg \"rsassa\" but the quote is signed with ecdsa",
    );
}

#[test]
fn quote_signed_by_another_key_fails() {
    let (rsa, ecc) = (SoftAk::rsa(), SoftAk::p256());
    // ECDSA signature checked against the RSA AK: refused by scheme.
    let quote = QuoteBuilder::new().build(&ecc);
    let ev = QuoteEvidence {
        sign_alg: "ecdsa".into(),
        ..evidence(&rsa, &quote)
    };
    let policy = prepare(&agent_policy(&rsa, ""));
    let v = attest(
        &ev,
        &Nonce::Text(NONCE.into()),
        &policy,
        &AgentState::default(),
    );
    assert_quote_invalid(&v, "'ecdsa' for RSA keys");
}

#[test]
fn certify_structures_are_not_quotes() {
    let ak = SoftAk::rsa();
    let mut q = QuoteBuilder::new();
    q.attest_type = 0x8017;
    // A certify type with a quote body does not even parse as TPMS_ATTEST.
    assert_quote_invalid(&run(&ak, &q.build(&ak)), "TPMS_ATTEST");
}

#[test]
fn malformed_quote_strings_are_typed_failures() {
    let ak = SoftAk::rsa();
    let good = QuoteBuilder::new().build(&ak);
    let cut = &good[..good.len() / 2];
    let huge = format!("r{}", "A".repeat(70_000));
    let cases: Vec<(&str, &str)> = vec![
        ("", "does not start with 'r'"),
        ("r", "expected 3"),
        ("garbage", "does not start with 'r'"),
        ("r!!!:@@@:###", "base64"),
        ("rAAAA:AAAA:AAAA", "TPMS_ATTEST"),
        (cut, "malformed"),
        (&huge, "exceeds the limit"),
    ];
    for (quote, expect) in cases {
        let v = run(&ak, quote);
        assert_quote_invalid(&v, expect);
    }
    // Truncated base64 inside a part.
    let parts: Vec<&str> = good.split(':').collect();
    let truncated = format!(
        "{}:{}:{}",
        parts[0],
        &parts[1][..parts[1].len() - 3],
        parts[2]
    );
    assert_quote_invalid(&run(&ak, &truncated), "base64");
}

#[test]
fn no_single_character_change_panics_or_changes_the_pcrs() {
    // Changes to the attest or signature parts must all fail; the PCR blob has padding
    // (unused digest slots, unused selection slots) no check covers, so a change there may
    // pass, but must never change the PCR values the verdict reports.
    let ak = SoftAk::p256();
    let good = QuoteBuilder::new().build(&ak);
    let policy = prepare(&agent_policy(&ak, ""));
    let nonce = Nonce::Text(NONCE.into());
    let reference = attest(
        &evidence(&ak, &good),
        &nonce,
        &policy,
        &AgentState::default(),
    );
    let blob_start = good.rfind(':').unwrap();
    let mut passed = 0;
    for i in 0..good.len() {
        for c in ['A', '/', ':', 'r'] {
            let mut bytes = good.clone().into_bytes();
            if bytes[i] == c as u8 {
                continue;
            }
            bytes[i] = c as u8;
            let mutated = String::from_utf8(bytes).unwrap();
            let v = attest(
                &evidence(&ak, &mutated),
                &nonce,
                &policy,
                &AgentState::default(),
            );
            if v.passed() {
                assert!(
                    i > blob_start,
                    "mutation at {i} to {c:?} outside the blob passed"
                );
                passed += 1;
                assert_eq!(
                    v.pcrs, reference.pcrs,
                    "mutation at {i} to {c:?} changed PCRs"
                );
            }
        }
    }
    assert!(
        passed > 0,
        "blob padding changes are expected to be tolerated"
    );
}
