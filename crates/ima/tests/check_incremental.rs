//! The check's chain-first semantics, incremental rounds, quote lag and progress, and the
//! per-entry rules (violations, entry PCRs, excludes, boot_aggregate).

mod common;

use std::collections::BTreeMap;

use common::{LogBuilder, file_digest, hexs, ids, input, policy_for, prepare};
use keylime_ima::{HashAlg, ImaState, check};
use sha2::Digest as _;

fn path(i: usize) -> String {
    format!("/usr/lib/x86_64-linux-gnu/lib{i}.so")
}

#[test]
fn a_large_log_then_only_the_appended_chunk() {
    const N: usize = 100_000;
    let mut log = LogBuilder::new();
    for i in 0..N {
        log.file(&path(i));
    }
    let policy = prepare(&policy_for((0..N + 10).map(path)));
    let pcr = log.pcr(HashAlg::Sha256);
    let v = check(
        &input(&log.text, 0, HashAlg::Sha256, &pcr, Some(&policy)),
        &ImaState::default(),
    );
    assert!(v.passed(), "{:?}", &v.failures[..v.failures.len().min(3)]);
    assert_eq!(v.chain_entries, N as u64);
    assert_eq!(v.evaluated_entries, N as u64);
    assert_eq!(v.next_state.next_entry, N as u64);
    assert_eq!(v.next_state.pcr10.as_deref(), Some(hexs(&pcr).as_str()));
    assert_eq!(v.next_state.bank.as_deref(), Some("sha256"));
    let state = v.next_state;

    let before = log.text.len();
    for i in N..N + 10 {
        log.file(&path(i));
    }
    let chunk = &log.text[before..];
    let pcr = log.pcr(HashAlg::Sha256);
    let v = check(
        &input(chunk, N as u64, HashAlg::Sha256, &pcr, Some(&policy)),
        &state,
    );
    assert!(v.passed(), "{:?}", v.failures);
    assert_eq!(v.chain_entries, 10);
    assert_eq!(v.evaluated_entries, 10);
    assert_eq!(v.next_state.next_entry, N as u64 + 10);
    assert!(!v.next_state.lagging);

    // the agent answering from entry 0 resets: the whole list is checked again
    let v = check(
        &input(&log.text, 0, HashAlg::Sha256, &pcr, Some(&policy)),
        &v.next_state,
    );
    assert!(v.passed());
    assert_eq!(v.chain_entries, N as u64 + 10);
    assert_eq!(v.next_state.next_entry, N as u64 + 10);

    // a chunk that does not start where the state is cannot be replayed
    let v = check(
        &input(chunk, N as u64 - 1, HashAlg::Sha256, &pcr, Some(&policy)),
        &state,
    );
    assert_eq!(ids(&v), vec!["pcr_mismatch"]);
    assert_eq!(v.next_state, ImaState::default());
    // nor in another bank than the stored value's
    let v = check(
        &input(chunk, N as u64, HashAlg::Sha1, &[0; 20], Some(&policy)),
        &state,
    );
    assert_eq!(ids(&v), vec!["pcr_mismatch"]);
}

fn small_log(n: usize) -> LogBuilder {
    let mut log = LogBuilder::new();
    for i in 0..n {
        log.file(&path(i));
    }
    log
}

#[test]
fn a_removed_entry_breaks_the_chain_and_no_policy_event_is_raised() {
    let log = small_log(50);
    let pcr = log.pcr(HashAlg::Sha256);
    let lines: Vec<&str> = log.text.lines().collect();
    let tampered: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 25)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    // an empty policy would fail every entry: chain first means none of that is reported
    let empty = prepare(&policy_for([]));
    let v = check(
        &input(&tampered, 0, HashAlg::Sha256, &pcr, Some(&empty)),
        &ImaState::default(),
    );
    assert_eq!(ids(&v), vec!["pcr_mismatch"]);
    assert_eq!(
        v.failures[0].message(),
        Some(format!("IMA measurement list does not match TPM PCR {}", hexs(&pcr)).as_str())
    );
    assert_eq!(v.chain_entries, 49);
    assert_eq!(v.evaluated_entries, 0);
    assert_eq!(v.next_state, ImaState::default());

    // a modified path breaks the template hash: ima_hash, still no policy event
    let modified = log.text.replacen(&path(7), "/usr/bin/evil", 1);
    let v = check(
        &input(&modified, 0, HashAlg::Sha256, &pcr, Some(&empty)),
        &ImaState::default(),
    );
    assert_eq!(ids(&v), vec!["validation.ima_hash", "pcr_mismatch"]);
    assert_eq!(v.failures[0].context["name"], "/usr/bin/evil");
    assert_eq!(v.evaluated_entries, 0);
}

#[test]
fn unlisted_and_mismatching_files_are_named() {
    let mut log = small_log(3);
    log.file("/usr/bin/unlisted");
    log.ima_ng(&path(1), "sha256", &[7; 32]);
    let policy = prepare(&policy_for((0..3).map(path)));
    let pcr = log.pcr(HashAlg::Sha256);
    let v = check(
        &input(&log.text, 0, HashAlg::Sha256, &pcr, Some(&policy)),
        &ImaState::default(),
    );
    assert_eq!(
        ids(&v),
        vec![
            "validation.ima-ng.not_in_allowlist",
            "validation.ima-ng.runtime_policy_hash"
        ]
    );
    assert_eq!(
        v.failures[0].event_id(),
        "ima.validation.ima-ng.not_in_allowlist"
    );
    assert_eq!(
        v.failures[0].context,
        serde_json::json!({"message": "File not found in allowlist: /usr/bin/unlisted"})
    );
    assert_eq!(
        v.failures[1].context,
        serde_json::json!({
            "message": "Hash not found in runtime policy",
            "got": "07".repeat(32),
            "expected": [hexs(&file_digest(&path(1)))],
        })
    );
    assert!(v.failures.iter().all(|f| f.recoverable));
    assert_eq!(v.next_state, ImaState::default());

    // excluded paths are accepted (the regex is anchored at the start of the path)
    let mut p = policy_for((0..3).map(path));
    p.excludes = vec![
        "/usr/bin/un".into(),
        "/usr/lib/x86_64-linux-gnu/lib1\\.so$".into(),
    ];
    let v = check(
        &input(&log.text, 0, HashAlg::Sha256, &pcr, Some(&prepare(&p))),
        &ImaState::default(),
    );
    assert!(v.passed(), "{:?}", v.failures);
    p.excludes = vec!["bin/unlisted".into(), "lib1".into()];
    let v = check(
        &input(&log.text, 0, HashAlg::Sha256, &pcr, Some(&prepare(&p))),
        &ImaState::default(),
    );
    assert_eq!(v.failures.len(), 2);

    // without a policy only the chain is checked
    let v = check(
        &input(&log.text, 0, HashAlg::Sha256, &pcr, None),
        &ImaState::default(),
    );
    assert!(v.passed());
    assert_eq!((v.chain_entries, v.evaluated_entries), (5, 0));
}

/// Lines `from..` of `log` (the chunk an agent sends when asked for entry `from`).
fn chunk_from(log: &LogBuilder, from: usize) -> String {
    log.text
        .lines()
        .skip(from)
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn a_lagging_quote_and_its_progress() {
    let policy = prepare(&policy_for((0..40).map(path)));
    let log10 = small_log(10);
    let v = check(
        &input(
            &log10.text,
            0,
            HashAlg::Sha256,
            &log10.pcr(HashAlg::Sha256),
            Some(&policy),
        ),
        &ImaState::default(),
    );
    assert!(v.passed());
    let state = v.next_state;
    assert_eq!(state.next_entry, 10);

    // round 2: the quote covers 4 of the new entries; every new entry is still evaluated
    let pcr14 = small_log(14).pcr(HashAlg::Sha256);
    let log19 = small_log(19);
    let mut with_unlisted = log19.clone();
    with_unlisted.file("/usr/bin/unlisted-after-the-quote");
    let v = check(
        &input(
            &chunk_from(&with_unlisted, 10),
            10,
            HashAlg::Sha256,
            &pcr14,
            Some(&policy),
        ),
        &state,
    );
    assert_eq!(ids(&v), vec!["validation.ima-ng.not_in_allowlist"]);
    assert_eq!((v.chain_entries, v.evaluated_entries), (10, 10));

    let v = check(
        &input(
            &chunk_from(&log19, 10),
            10,
            HashAlg::Sha256,
            &pcr14,
            Some(&policy),
        ),
        &state,
    );
    assert!(v.passed(), "{:?}", v.failures);
    assert_eq!(
        v.next_state.next_entry, 14,
        "entries after the quote are requested again"
    );
    assert_eq!(v.next_state.lag, 5);
    assert!(v.next_state.lagging);
    let lagging = v.next_state;

    // round 3 from entry 14: the quote moves by less than the previous lag → quote_progress
    let pcr16 = small_log(16).pcr(HashAlg::Sha256);
    let v = check(
        &input(
            &chunk_from(&log19, 14),
            14,
            HashAlg::Sha256,
            &pcr16,
            Some(&policy),
        ),
        &lagging,
    );
    assert_eq!(ids(&v), vec!["quote_progress"]);
    assert_eq!(
        v.failures[0].message(),
        Some("PCR quote did not make progress to catch up with log")
    );
    assert_eq!(v.next_state, ImaState::default());
    // catching up with the log is progress
    let v = check(
        &input(
            &chunk_from(&log19, 14),
            14,
            HashAlg::Sha256,
            &log19.pcr(HashAlg::Sha256),
            Some(&policy),
        ),
        &lagging,
    );
    assert!(v.passed(), "{:?}", v.failures);
    assert!(!v.next_state.lagging);
    // so is moving by the whole previous lag while the log grows further
    let log25 = small_log(25);
    let v = check(
        &input(
            &chunk_from(&log25, 14),
            14,
            HashAlg::Sha256,
            &log19.pcr(HashAlg::Sha256),
            Some(&policy),
        ),
        &lagging,
    );
    assert!(v.passed(), "{:?}", v.failures);
    assert_eq!((v.next_state.next_entry, v.next_state.lag), (19, 6));
}

#[test]
fn violations_follow_ignore_tomtou_errors_inverted() {
    let mut log = small_log(2);
    log.violation("/var/log/open-for-write");
    log.file(&path(2));
    let policy = prepare(&policy_for((0..3).map(path)));
    let pcr = log.pcr(HashAlg::Sha256);
    let mut inp = input(&log.text, 0, HashAlg::Sha256, &pcr, Some(&policy));
    let v = check(&inp, &ImaState::default());
    assert!(v.passed(), "{:?}", v.failures);
    assert_eq!((v.chain_entries, v.evaluated_entries), (4, 3));
    inp.ignore_tomtou_errors = true;
    let v = check(&inp, &ImaState::default());
    assert_eq!(ids(&v), vec!["validation.tomtou"]);
    assert_eq!(v.failures[0].message(), Some("hash validation was skipped"));
}

#[test]
fn entries_for_another_pcr_are_reported() {
    let mut log = small_log(1);
    let data = [
        common::d_ng("sha256", &file_digest(&path(1))),
        common::n_ng(&path(1)),
    ]
    .concat();
    log.push(
        11,
        "ima-ng",
        &format!("sha256:{} {}", hexs(&file_digest(&path(1))), path(1)),
        &data,
    );
    let policy = prepare(&policy_for((0..2).map(path)));
    let pcr = log.pcr(HashAlg::Sha256);
    let v = check(
        &input(&log.text, 0, HashAlg::Sha256, &pcr, Some(&policy)),
        &ImaState::default(),
    );
    assert_eq!(ids(&v), vec!["validation.ima_pcr"]);
    assert_eq!(
        v.failures[0].context,
        serde_json::json!({"message": "IMA PCR is not the configured one", "expected": "10", "got": "11"})
    );
    assert_eq!(v.evaluated_entries, 2);
}

#[test]
fn boot_aggregate_from_policy_event_log_or_quoted_pcrs() {
    let pcrs: BTreeMap<u8, Vec<u8>> = (0..10u8).map(|i| (i, vec![i * 3; 32])).collect();
    let aggregate = |last: u8| {
        let mut h = sha2::Sha256::new();
        for i in 0..=last {
            h.update(&pcrs[&i]);
        }
        h.finalize().to_vec()
    };
    let run = |digest: &[u8],
               policy: &keylime_ima::policy::RuntimePolicy,
               extra: &[(HashAlg, Vec<u8>)],
               with_pcrs: bool| {
        let mut log = LogBuilder::new();
        log.ima_ng("boot_aggregate", "sha256", digest);
        let pcr = log.pcr(HashAlg::Sha256);
        let prepared = prepare(policy);
        let mut inp = input(&log.text, 0, HashAlg::Sha256, &pcr, Some(&prepared));
        if with_pcrs {
            inp.quoted_pcrs = &pcrs;
        }
        inp.extra_boot_aggregates = extra;
        check(&inp, &ImaState::default())
    };
    let none = policy_for([]);
    assert!(run(&aggregate(7), &none, &[], true).passed());
    assert!(run(&aggregate(9), &none, &[], true).passed());
    let v = run(&aggregate(7), &none, &[], false);
    assert_eq!(ids(&v), vec!["validation.ima-ng.not_in_allowlist"]);
    assert_eq!(
        v.failures[0].message(),
        Some("File not found in allowlist: boot_aggregate")
    );
    let v = run(&[9; 32], &none, &[], true);
    assert_eq!(ids(&v), vec!["validation.ima-ng.runtime_policy_hash"]);
    assert_eq!(
        v.failures[0].context["expected"],
        serde_json::json!([hexs(&aggregate(7)), hexs(&aggregate(9))])
    );
    assert!(run(&[9; 32], &none, &[(HashAlg::Sha1, vec![9; 32])], false).passed());
    let mut listed = policy_for([]);
    listed
        .digests
        .insert("boot_aggregate".into(), vec!["09".repeat(32)]);
    assert!(run(&[9; 32], &listed, &[], false).passed());
}

#[test]
fn a_sha256_log_hash_alg_checks_column_2_with_sha256() {
    let log = small_log(3);
    let mut p = policy_for((0..3).map(path));
    p.ima.log_hash_alg = "sha256".into();
    let pcr = log.pcr(HashAlg::Sha256);
    let v = check(
        &input(&log.text, 0, HashAlg::Sha256, &pcr, Some(&prepare(&p))),
        &ImaState::default(),
    );
    // the writer puts sha1 template hashes in column 2
    assert_eq!(ids(&v), vec!["validation.ima_hash"; 3]);
    assert_eq!(v.evaluated_entries, 0);
    assert!(v.next_state == ImaState::default());
}
