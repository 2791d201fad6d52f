//! PCR policy through the engine: `tpm_policy` matches and mismatches, missing PCRs, PCR 16
//! payload-key binding, PCR 10 without an IMA list, and configured severities.

mod common;

use std::sync::Arc;

use common::*;
use keylime_attestation::pcr_checks::data_pcr_value;
use keylime_attestation::{
    AgentState, Nonce, PreparedPolicy, SeverityPolicy, SeverityRule, Verdict, attest,
};
use keylime_tpm::HashAlg;

const H: HashAlg = HashAlg::Sha256;

fn hex_of(byte: u8) -> String {
    hex::encode(pcr(H, byte))
}

fn run_with(
    policy: &PreparedPolicy,
    ak: &SoftAk,
    q: &QuoteBuilder,
    pubkey: Option<&str>,
    prior: &AgentState,
) -> Verdict {
    let quote = q.build(ak);
    let mut ev = evidence(ak, &quote);
    ev.pubkey_pem = pubkey.map(Into::into);
    attest(&ev, &Nonce::Text(NONCE.into()), policy, prior)
}

fn run(tpm_policy: &str, q: &QuoteBuilder) -> Verdict {
    let ak = SoftAk::rsa();
    let policy = prepare(&agent_policy(&ak, tpm_policy));
    run_with(&policy, &ak, q, None, &AgentState::default())
}

fn ids(v: &Verdict) -> Vec<String> {
    v.failure()
        .map(|f| f.event_ids().into_iter().map(String::from).collect())
        .unwrap_or_default()
}

#[test]
fn matching_policy_passes_in_any_hex_spelling() {
    let policy = format!(
        r#"{{"7": ["{}", "0x{}"], "1": "0X{}", "mask": "0x82"}}"#,
        hex_of(0x99),
        hex_of(0x77).to_uppercase(),
        hex_of(0x11)
    );
    let v = run(&policy, &QuoteBuilder::new());
    assert!(v.passed(), "{:?}", v.failure());
}

#[test]
fn mismatching_pcr_is_invalid_pcr_n_with_upstream_context() {
    let policy = format!(
        r#"{{"7": ["{}"], "1": ["{}"]}}"#,
        hex_of(0x99),
        hex_of(0x11)
    );
    let v = run(&policy, &QuoteBuilder::new());
    assert_eq!(ids(&v), ["pcr_validation.invalid_pcr_7"]);
    let e = &v.failure().unwrap().events[0];
    assert!(e.recoverable);
    assert_eq!(e.context["context"], "PCR value is not in allowlist");
    assert_eq!(e.context["got"], hex_of(0x77));
    assert_eq!(e.context["expected"], serde_json::json!([hex_of(0x99)]));
    // The quote itself was good: PCRs and clock are reported, state is not advanced.
    assert!(v.pcrs.is_some());
    assert_eq!(v.next_state.attestation_count, 0);
    assert_eq!(v.next_state.tpm_clockinfo, None);
}

#[test]
fn policy_pcr_not_quoted_is_missing_pcrs() {
    let policy = format!(
        r#"{{"7": "{}", "4": "{}", "14": "{}"}}"#,
        hex_of(0x77),
        hex_of(4),
        hex_of(14)
    );
    let v = run(&policy, &QuoteBuilder::new());
    assert_eq!(ids(&v), ["pcr_validation.missing_pcrs"]);
    let ctx = &v.failure().unwrap().events[0].context;
    assert_eq!(ctx["data"], serde_json::json!([4, 14]));
    assert_eq!(ctx["context"], "PCRs are missing in quote");
}

#[test]
fn mismatch_and_missing_are_both_reported() {
    let policy = format!(r#"{{"0": "{}", "5": "{}"}}"#, hex_of(0xEE), hex_of(5));
    let v = run(&policy, &QuoteBuilder::new());
    assert_eq!(
        ids(&v),
        [
            "pcr_validation.invalid_pcr_0",
            "pcr_validation.missing_pcrs"
        ]
    );
    assert!(v.failure().unwrap().recoverable());
}

#[test]
fn quoted_pcrs_not_in_policy_are_ignored() {
    // Policy names only PCR 1; PCRs 0 and 7 are quoted with arbitrary values.
    let v = run(
        &format!(r#"{{"1": "{}"}}"#, hex_of(0x11)),
        &QuoteBuilder::new(),
    );
    assert!(v.passed(), "{:?}", v.failure());
}

#[test]
fn quoted_pcr_10_without_ima_list_is_unused_pcr_10() {
    let q = QuoteBuilder::new().with_pcr(10, pcr(H, 0x10));
    // Even with a tpm_policy entry for PCR 10: it belongs to the IMA check.
    let v = run(&format!(r#"{{"10": "{}"}}"#, hex_of(0x10)), &q);
    assert_eq!(ids(&v), ["pcr_validation.unused_pcr_10"]);
    assert!(v.failure().unwrap().events[0].recoverable);
}

fn pcr16_policy(ak: &SoftAk) -> PreparedPolicy {
    let mut p = agent_policy(ak, "");
    p.check_pcr16 = true;
    prepare(&p)
}

#[test]
fn pcr16_binding_good_bad_missing() {
    let ak = SoftAk::rsa();
    let policy = pcr16_policy(&ak);
    let fresh = AgentState::default();
    let bound = QuoteBuilder::new().with_pcr(16, data_pcr_value(H, PEM.as_bytes()));

    let v = run_with(&policy, &ak, &bound, Some(PEM), &fresh);
    assert!(v.passed(), "{:?}", v.failure());
    assert!(v.pubkey_changed);
    assert_eq!(v.next_state.pubkey_pem.as_deref(), Some(PEM));

    // Same quote, the agent omits the key (partial=1): the cached key is used.
    let v2 = run_with(
        &policy,
        &ak,
        &bound.clone().with_clock(2000, 1, 0, true),
        None,
        &v.next_state,
    );
    assert!(v2.passed(), "{:?}", v2.failure());
    assert!(!v2.pubkey_changed);

    // A different key than the one PCR 16 holds.
    let other = PEM.replace("MFkw", "MFkx");
    let v = run_with(&policy, &ak, &bound, Some(&other), &fresh);
    assert_eq!(ids(&v), ["pcr_validation.invalid_pcr_16"]);
    let ctx = &v.failure().unwrap().events[0].context;
    assert_eq!(ctx["got"], hex::encode(data_pcr_value(H, PEM.as_bytes())));
    assert_eq!(
        ctx["expected"],
        hex::encode(data_pcr_value(H, other.as_bytes()))
    );

    // PCR 16 not quoted at all.
    let v = run_with(&policy, &ak, &QuoteBuilder::new(), Some(PEM), &fresh);
    assert_eq!(ids(&v), ["pcr_validation.missing_pcr_16"]);
    assert!(v.failure().unwrap().events[0].recoverable);
}

#[test]
fn pcr16_without_any_key_is_no_pubkey() {
    let ak = SoftAk::rsa();
    let v = run_with(
        &pcr16_policy(&ak),
        &ak,
        &QuoteBuilder::new(),
        None,
        &AgentState::default(),
    );
    assert_eq!(ids(&v), ["qoute_validation.no_pubkey"]);
    assert!(!v.failure().unwrap().recoverable());
}

#[test]
fn pcr16_is_not_checked_against_tpm_policy_when_bound() {
    let ak = SoftAk::rsa();
    let mut p = agent_policy(&ak, &format!(r#"{{"16": "{}"}}"#, hex_of(0x16)));
    p.check_pcr16 = true;
    let q = QuoteBuilder::new().with_pcr(16, data_pcr_value(H, PEM.as_bytes()));
    let v = run_with(&prepare(&p), &ak, &q, Some(PEM), &AgentState::default());
    assert!(v.passed(), "{:?}", v.failure());
}

#[test]
fn severity_policy_labels_recoverable_events() {
    let ak = SoftAk::rsa();
    let labels = ["info", "warning", "critical"].map(String::from).to_vec();
    let rules = [
        SeverityRule {
            event_id: r"pcr_validation\.invalid_pcr_7".into(),
            severity_label: "info".into(),
        },
        SeverityRule {
            event_id: r"pcr_validation\..*".into(),
            severity_label: "warning".into(),
        },
    ];
    let sev = Arc::new(SeverityPolicy::new(labels, &rules).unwrap());
    let policy = PreparedPolicy::new(
        &agent_policy(
            &ak,
            &format!(r#"{{"7": "{}", "3": "{}"}}"#, hex_of(0), hex_of(3)),
        ),
        sev,
    )
    .unwrap();
    let v = run_with(
        &policy,
        &ak,
        &QuoteBuilder::new(),
        None,
        &AgentState::default(),
    );
    let f = v.failure().unwrap();
    let got: Vec<(&str, &str, u32)> = f
        .events
        .iter()
        .map(|e| {
            (
                e.event_id.as_str(),
                e.severity_label.as_str(),
                e.severity_level,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("pcr_validation.invalid_pcr_7", "info", 0),
            ("pcr_validation.missing_pcrs", "warning", 1)
        ]
    );
    assert_eq!(
        f.highest_severity_event().unwrap().event_id,
        "pcr_validation.missing_pcrs"
    );

    // Irrecoverable events are raised to the top label whatever the rules say.
    let mut q = QuoteBuilder::new();
    q.nonce = b"wrong".to_vec();
    let v = run_with(&policy, &ak, &q, None, &AgentState::default());
    let top = v.failure().unwrap().highest_severity_event().unwrap();
    assert_eq!(
        (top.severity_label.as_str(), top.severity_level),
        ("critical", 2)
    );
}
