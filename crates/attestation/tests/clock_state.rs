//! TPM clock rules across consecutive quotes, the state the engine hands back, and exact
//! replay of a serialized attestation (what `keylime_attest` relies on).

mod common;

use common::*;
use keylime_attestation::{
    AgentPolicy, AgentState, ClockTransition, Nonce, QuoteEvidence, Verdict, attest,
};

/// Attest a sequence of (clock, reset, restart, safe) quotes, each against the state the
/// previous one returned; returns every verdict.
fn sequence(clocks: &[(u64, u32, u32, bool)]) -> Vec<Verdict> {
    let ak = SoftAk::rsa();
    let policy = prepare(&agent_policy(&ak, ""));
    let mut state = AgentState::default();
    let mut out = Vec::new();
    for &(clock, reset, restart, safe) in clocks {
        let quote = QuoteBuilder::new()
            .with_clock(clock, reset, restart, safe)
            .build(&ak);
        let v = attest(
            &evidence(&ak, &quote),
            &Nonce::Text(NONCE.into()),
            &policy,
            &state,
        );
        state = v.next_state.clone();
        out.push(v);
    }
    out
}

fn assert_clock_failure(v: &Verdict, data_contains: &str) {
    let f = v.failure().expect("clock failure");
    assert_eq!(f.event_ids(), ["qoute_validation.quote_validation"]);
    let e = &f.events[0];
    assert!(!e.recoverable);
    assert_eq!(
        e.context["message"],
        "Validation of clockinfo from quote using tpm2-tools"
    );
    let data = e.context["data"].as_str().unwrap();
    assert!(
        data.contains(data_contains),
        "{data:?} lacks {data_contains:?}"
    );
}

#[test]
fn clock_advancing_in_one_boot_passes() {
    let v = sequence(&[(1000, 1, 0, true), (1500, 1, 0, true), (9000, 1, 0, true)]);
    assert!(v.iter().all(Verdict::passed));
    assert_eq!(v[1].clock_transition, Some(ClockTransition::SameBoot));
    assert_eq!(v[2].next_state.attestation_count, 3);
    assert_eq!(v[2].next_state.tpm_clockinfo.unwrap().clock, 9000);
}

#[test]
fn clock_going_backwards_fails_and_keeps_the_prior_state() {
    let v = sequence(&[(1000, 1, 0, true), (999, 1, 0, true), (1000, 1, 0, true)]);
    assert!(v[0].passed());
    assert_clock_failure(&v[1], "did not increase");
    // The failed quote did not move the reference: the same clock fails again.
    assert_eq!(v[1].next_state, v[0].next_state);
    assert_clock_failure(&v[2], "did not increase");
    assert!(v[1].pcrs.is_some(), "the quote itself was valid");
    assert_eq!(v[1].clock.unwrap().clock, 999);
}

#[test]
fn unsafe_clock_fails_even_on_the_first_quote() {
    let v = sequence(&[(1000, 1, 0, false)]);
    assert_clock_failure(&v[0], "safe flag is disabled");
    let v = sequence(&[(1000, 1, 0, true), (2000, 1, 0, false)]);
    assert_clock_failure(&v[1], "safe flag is disabled");
}

#[test]
fn reboot_is_accepted_and_recorded() {
    // Restarted twice in boot 1, then a reboot: restartCount back to 0, clock lower.
    let v = sequence(&[(5000, 1, 2, true), (40, 2, 0, true), (90, 2, 0, true)]);
    assert!(
        v.iter().all(Verdict::passed),
        "{:?}",
        v.iter().map(|v| v.failure()).collect::<Vec<_>>()
    );
    assert_eq!(
        v[1].clock_transition,
        Some(ClockTransition::Rebooted { from: 1, to: 2 })
    );
    let s = &v[2].next_state;
    assert_eq!(s.reboots_seen, 1);
    assert_eq!(s.tpm_clockinfo.unwrap().reset_count, 2);
    assert_eq!(s.tpm_clockinfo.unwrap().clock, 90);
}

#[test]
fn reset_count_going_down_fails() {
    let v = sequence(&[(5000, 3, 0, true), (6000, 2, 0, true)]);
    assert_clock_failure(&v[1], "resetCount value decreased");
}

#[test]
fn restart_within_a_boot_is_accepted() {
    let v = sequence(&[(5000, 1, 0, true), (5000, 1, 1, true), (7000, 1, 1, true)]);
    assert!(v.iter().all(Verdict::passed));
    assert_eq!(
        v[1].clock_transition,
        Some(ClockTransition::Resumed { from: 0, to: 1 })
    );
    assert_eq!(v[2].next_state.resumes_seen, 1);
    // But the clock may not go back across it, nor the restart count down.
    let v = sequence(&[(5000, 1, 0, true), (4000, 1, 1, true)]);
    assert_clock_failure(&v[1], "went back across a TPM restart");
    let v = sequence(&[(5000, 1, 3, true), (6000, 1, 2, true)]);
    assert_clock_failure(&v[1], "restartCount value decreased");
}

#[test]
fn clock_check_can_be_disabled_for_stateless_verification() {
    let ak = SoftAk::rsa();
    let mut p = agent_policy(&ak, "");
    p.check_clock = false;
    let policy = prepare(&p);
    let prior = sequence(&[(9000, 5, 0, true)]).remove(0).next_state;
    let quote = QuoteBuilder::new().with_clock(10, 1, 0, false).build(&ak);
    let v = attest(
        &evidence(&ak, &quote),
        &Nonce::Text(NONCE.into()),
        &policy,
        &prior,
    );
    assert!(v.passed(), "{:?}", v.failure());
    assert_eq!(v.clock_transition, None);
}

#[test]
fn serialized_inputs_replay_to_the_same_verdict() {
    let ak = SoftAk::p256();
    let policy_in = agent_policy(&ak, &format!(r#"{{"7": "{}"}}"#, "00".repeat(32)));
    let prior = sequence(&[(100, 1, 0, true)]).remove(0).next_state;
    let quote = QuoteBuilder::new().with_clock(200, 1, 0, true).build(&ak);
    let mut ev = evidence(&ak, &quote);
    ev.pubkey_pem = Some(PEM.into());
    let nonce = Nonce::Text(NONCE.into());
    let live = attest(&ev, &nonce, &prepare(&policy_in), &prior);
    assert_eq!(
        live.failure().unwrap().event_ids(),
        ["pcr_validation.invalid_pcr_7"]
    );

    let stored = serde_json::to_string(&(&ev, &nonce, &policy_in, &prior)).unwrap();
    let (ev2, nonce2, policy2, prior2): (QuoteEvidence<'_>, Nonce, AgentPolicy, AgentState) =
        serde_json::from_str(&stored).unwrap();
    let replayed = attest(&ev2, &nonce2, &prepare(&policy2), &prior2);
    assert_eq!(replayed, live);
    // And the verdict itself round-trips.
    let text = serde_json::to_string(&live).unwrap();
    assert_eq!(serde_json::from_str::<Verdict>(&text).unwrap(), live);
}
