//! The engine with IMA evidence: a 100,000-entry list attested in full against a runtime
//! policy, then only the 10 new entries of the next round processed (the verdict counts
//! them); an entry number the verifier did not ask for; an unlisted file; a reboot that
//! restarts the replay instead of failing.

mod common;

use std::sync::Arc;

use common::{QuoteBuilder, SoftAk, agent_policy, evidence, prepare};
use keylime_attestation::{AgentState, Nonce, attest};
use keylime_ima::policy::RuntimePolicy;
use keylime_ima::{HashAlg, PreparedRuntimePolicy, Replay, parse_line, template_hash};

/// One ima-ng line for `path` whose file digest is derived from `i`, template hash computed.
fn line(i: usize, path: &str) -> String {
    let digest = format!("{:064x}", i + 1);
    let fields = format!("ima-ng sha256:{digest} {path}");
    let placeholder = format!("10 {} {fields}", "11".repeat(20));
    let entry = parse_line(&placeholder, 1).unwrap();
    let th = template_hash(&entry, HashAlg::Sha1).unwrap();
    format!("10 {} {fields}", hex::encode(th.as_ref()))
}

fn replay(replay: &mut Replay, lines: &[String]) -> Vec<u8> {
    for l in lines {
        replay.extend_entry(&parse_line(l, 1).unwrap());
    }
    replay.value().as_ref().to_vec()
}

fn policy_for(lines: &[String]) -> PreparedRuntimePolicy {
    let mut p = RuntimePolicy::empty();
    p.meta.generator = 3;
    for l in lines {
        let mut f = l.split(' ');
        let digest = f.nth(3).unwrap().trim_start_matches("sha256:").to_owned();
        let path = f.next().unwrap().to_owned();
        p.digests.entry(path).or_default().push(digest);
    }
    PreparedRuntimePolicy::prepare(&p).expect("policy prepares")
}

fn text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn incremental_rounds_process_only_new_entries() {
    let ak = SoftAk::rsa();
    let first: Vec<String> = (0..100_000)
        .map(|i| line(i, &format!("/usr/lib/f{i}")))
        .collect();
    let more: Vec<String> = (100_000..100_010)
        .map(|i| line(i, &format!("/usr/lib/f{i}")))
        .collect();
    let all: Vec<String> = first.iter().chain(&more).cloned().collect();
    let mut policy = prepare(&agent_policy(&ak, "{}"));
    policy.runtime_policy = Some(Arc::new(policy_for(&all)));

    let mut r = Replay::new(HashAlg::Sha256).unwrap();
    let pcr_a = replay(&mut r, &first);
    let pcr_b = replay(&mut r, &more);

    // Round 1: the whole list.
    let q = QuoteBuilder::new().with_pcr(10, pcr_a.clone()).build(&ak);
    let list = text(&first);
    let mut ev = evidence(&ak, &q);
    ev.ima_measurement_list = Some(list.as_str().into());
    ev.ima_measurement_list_entry = Some(0);
    let nonce = Nonce::Text(common::NONCE.into());
    let v1 = attest(&ev, &nonce, &policy, &AgentState::default());
    assert!(v1.passed(), "{:?}", v1.failure());
    assert_eq!(
        (v1.ima_chain_entries, v1.ima_evaluated_entries),
        (100_000, 100_000)
    );
    assert_eq!(v1.next_state.ima.next_entry, 100_000);

    // Round 2: only the ten new entries are sent and processed.
    let q = QuoteBuilder::new()
        .with_pcr(10, pcr_b.clone())
        .with_clock(2000, 1, 0, true)
        .build(&ak);
    let list = text(&more);
    let mut ev = evidence(&ak, &q);
    ev.ima_measurement_list = Some(list.as_str().into());
    ev.ima_measurement_list_entry = Some(100_000);
    let v2 = attest(&ev, &nonce, &policy, &v1.next_state);
    assert!(v2.passed(), "{:?}", v2.failure());
    assert_eq!((v2.ima_chain_entries, v2.ima_evaluated_entries), (10, 10));
    assert_eq!(v2.next_state.ima.next_entry, 100_010);

    // An entry number nobody asked for.
    let mut ev = evidence(&ak, &q);
    ev.ima_measurement_list = Some(list.as_str().into());
    ev.ima_measurement_list_entry = Some(99_999);
    let bad = attest(&ev, &nonce, &policy, &v1.next_state);
    assert_eq!(
        bad.failure().unwrap().event_ids(),
        ["qoute_validation.invalid_ima_entry_nb"]
    );
    assert_eq!(
        bad.next_state.ima.next_entry, 0,
        "a failure restarts the replay"
    );

    // An unlisted file measured next: a policy failure naming it.
    let evil = line(7, "/tmp/evil");
    let mut r2 = r.clone();
    let pcr_c = replay(&mut r2, std::slice::from_ref(&evil));
    let q = QuoteBuilder::new()
        .with_pcr(10, pcr_c)
        .with_clock(3000, 1, 0, true)
        .build(&ak);
    let list = text(std::slice::from_ref(&evil));
    let mut ev = evidence(&ak, &q);
    ev.ima_measurement_list = Some(list.as_str().into());
    ev.ima_measurement_list_entry = Some(100_010);
    let v3 = attest(&ev, &nonce, &policy, &v2.next_state);
    let failure = v3.failure().expect("unlisted file fails");
    assert_eq!(
        failure.event_ids(),
        ["ima.validation.ima-ng.not_in_allowlist"]
    );
    assert!(
        failure.events[0].context.to_string().contains("/tmp/evil"),
        "{:?}",
        failure.events[0].context
    );

    // After a reboot (TPM reset count up) a list that does not start at 0 is not checked:
    // the replay restarts from entry 0 next round, with no failure now.
    let q = QuoteBuilder::new()
        .with_pcr(10, vec![0; 32])
        .with_clock(10, 2, 0, true)
        .build(&ak);
    let mut ev = evidence(&ak, &q);
    ev.ima_measurement_list = Some("".into());
    ev.ima_measurement_list_entry = Some(100_010);
    let rebooted = attest(&ev, &nonce, &policy, &v2.next_state);
    assert!(rebooted.passed(), "{:?}", rebooted.failure());
    assert_eq!(rebooted.next_state.ima.next_entry, 0);
    assert_eq!(rebooted.ima_chain_entries, 0);
}
