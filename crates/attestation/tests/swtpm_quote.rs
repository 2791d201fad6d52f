//! One real TPM (a private swtpm): quotes made by `keylime_tpm::Tpm::quote` pass the
//! engine with a `tpm_policy` built from the PCRs as read, PCR 16 bound to a payload key,
//! and the clock advancing; a PCR extended behind the verifier's back then fails the
//! policy. Fails loudly if swtpm is not installed.

mod common;

use std::sync::Arc;

use keylime_attestation::pcr_checks::data_pcr_value;
use keylime_attestation::{
    AgentPolicy, AgentState, ClockTransition, Nonce, PreparedPolicy, QuoteEvidence, SeverityPolicy,
    TpmPolicy, attest,
};
use keylime_testkit::Swtpm;
use keylime_tpm::{EkAlg, HashAlg, KeyHandle, PcrSelection, SignAlg, Tcti, Tpm, pcr_blob, quote};

const PEM: &str = common::PEM;

/// Quote `selection` with `nonce` and pack it as the agent does.
fn agent_quote(tpm: &mut Tpm, ak: &KeyHandle, nonce: &str, selection: &PcrSelection) -> String {
    // The agent re-binds PCR 16 to its payload key before every quote.
    tpm.pcr_reset(16).expect("PCR_Reset 16");
    tpm.pcr_extend(16, HashAlg::Sha256, &HashAlg::Sha256.digest(PEM.as_bytes()))
        .expect("PCR_Extend 16");
    let q = tpm
        .quote(ak, nonce.as_bytes(), selection, SignAlg::RsaSsa)
        .expect("TPM2_Quote");
    let values = tpm.pcr_read(selection).expect("PCR_Read");
    let blob = pcr_blob::encode(selection, &values).expect("PCR blob");
    quote::encode_quote_string(&q.attest, &q.signature, &blob)
}

fn evidence(quote: &str) -> QuoteEvidence<'_> {
    QuoteEvidence {
        quote: quote.into(),
        hash_alg: "sha256".into(),
        enc_alg: "rsa2048".into(),
        sign_alg: "rsassa".into(),
        pubkey_pem: Some(PEM.into()),
        ..Default::default()
    }
}

#[test]
fn real_swtpm_quotes_pass_and_a_tampered_pcr_fails() {
    let swtpm = Swtpm::start();
    let mut tpm = Tpm::open(&Tcti::parse(&swtpm.tcti_string()).expect("tcti")).expect("open TPM");
    let ek = tpm.create_ek(EkAlg::Rsa2048).expect("EK");
    let ak_blob = tpm
        .create_ak(&ek, HashAlg::Sha256, SignAlg::RsaSsa)
        .expect("AK");
    let ak = tpm.load_ak(&ek, &ak_blob).expect("load AK");

    // The verifier's policy: the current values of PCRs 0-7 as read now.
    let policed: Vec<u8> = (0..8).collect();
    let read_sel = PcrSelection::new(HashAlg::Sha256, policed.iter().copied()).unwrap();
    let values = tpm.pcr_read(&read_sel).expect("PCR_Read");
    let mut selection_pcrs = policed.clone();
    selection_pcrs.push(16);
    let selection = PcrSelection::new(HashAlg::Sha256, selection_pcrs).unwrap();
    let tpm_policy = TpmPolicy::new(
        policed
            .iter()
            .zip(&values)
            .map(|(p, v)| (*p, vec![hex::encode(v)])),
        Some(selection.mask()),
    )
    .unwrap();
    let agent_policy = AgentPolicy {
        ak_tpm: ak_blob.public.clone(),
        tpm_policy,
        accept: common::accept_all(),
        check_pcr16: true,
        check_clock: true,
    };
    let policy = PreparedPolicy::new(&agent_policy, Arc::new(SeverityPolicy::default()))
        .expect("prepared policy");

    let nonce1 = "Q1w2E3r4T5y6U7i8O9p0";
    let q1 = agent_quote(&mut tpm, &ak, nonce1, &selection);
    let v1 = attest(
        &evidence(&q1),
        &Nonce::Text(nonce1.into()),
        &policy,
        &AgentState::default(),
    );
    assert!(v1.passed(), "first quote: {:?}", v1.failure());
    assert_eq!(v1.clock_transition, Some(ClockTransition::FirstQuote));
    assert_eq!(
        v1.pcrs.as_ref().unwrap().hex(16),
        Some(hex::encode(data_pcr_value(HashAlg::Sha256, PEM.as_bytes())).as_str())
    );

    // A second quote in the same boot: the TPM clock has advanced.
    let nonce2 = "a1S2d3F4g5H6j7K8l9Z0";
    let q2 = agent_quote(&mut tpm, &ak, nonce2, &selection);
    let v2 = attest(
        &evidence(&q2),
        &Nonce::Text(nonce2.into()),
        &policy,
        &v1.next_state,
    );
    assert!(v2.passed(), "second quote: {:?}", v2.failure());
    assert_eq!(v2.clock_transition, Some(ClockTransition::SameBoot));
    assert_eq!(v2.next_state.attestation_count, 2);

    // The first quote replayed with its own nonce against the new state: clock not newer.
    let replay = attest(
        &evidence(&q1),
        &Nonce::Text(nonce1.into()),
        &policy,
        &v2.next_state,
    );
    assert_eq!(
        replay.failure().unwrap().event_ids(),
        ["qoute_validation.quote_validation"]
    );

    // PCR 7 extended behind the verifier's back.
    tpm.pcr_extend(7, HashAlg::Sha256, &[0xAB; 32])
        .expect("PCR_Extend 7");
    let nonce3 = "z9X8c7V6b5N4m3L2k1J0";
    let q3 = agent_quote(&mut tpm, &ak, nonce3, &selection);
    let v3 = attest(
        &evidence(&q3),
        &Nonce::Text(nonce3.into()),
        &policy,
        &v2.next_state,
    );
    let failure = v3.failure().expect("tampered PCR 7 must fail");
    assert_eq!(failure.event_ids(), ["pcr_validation.invalid_pcr_7"]);
    assert_eq!(
        failure.events[0].context["expected"][0],
        hex::encode(&values[7])
    );
    assert_eq!(
        v3.next_state, v2.next_state,
        "a failed quote does not advance state"
    );

    // And the quote for another nonce is not accepted for this one.
    let v4 = attest(
        &evidence(&q3),
        &Nonce::Text(nonce2.into()),
        &policy,
        &v2.next_state,
    );
    assert_eq!(
        v4.failure().unwrap().event_ids(),
        ["qoute_validation.quote_validation"]
    );
    tpm.flush_all().ok();
}
