//! Hostile input through `check` and `PreparedRuntimePolicy::prepare`: clear failures, no
//! panic, bounded output and bounded work. Work is bounded by what the code counts or
//! refuses (entries, events, bytes, the regex compiler's size limit); how long it takes is
//! measured by the `hostile` benchmark, not asserted here.

mod common;

use common::{LogBuilder, hexs, ids, input, policy_for, prepare};
use keylime_ima::policy::{PolicyError, RuntimePolicy};
use keylime_ima::{
    EXCLUDES_SIZE_LIMIT, HashAlg, ImaState, MAX_EVENTS_PER_ID, MAX_LINE_LEN, PreparedRuntimePolicy,
    check,
};

fn good_log() -> LogBuilder {
    let mut log = LogBuilder::new();
    for p in ["/a", "/b", "/c"] {
        log.file(p);
    }
    log
}

fn all_listed() -> PreparedRuntimePolicy {
    prepare(&policy_for(["/a", "/b", "/c"].map(String::from)))
}

/// The good log with line `at` replaced by `line`.
fn with_line(at: usize, line: &str) -> String {
    good_log()
        .text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == at {
                format!("{line}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

fn run(list: &str) -> keylime_ima::ImaVerdict {
    let log = good_log();
    let pcr = log.pcr(HashAlg::Sha256);
    let policy = all_listed();
    check(
        &input(list, 0, HashAlg::Sha256, &pcr, Some(&policy)),
        &ImaState::default(),
    )
}

#[test]
fn unparsable_lines_are_parser_entry_failures_and_stop_evaluation() {
    assert!(run(&good_log().text).passed());
    let th = "11".repeat(20);
    let d = format!("sha256:{}", "22".repeat(32));
    for (line, reason) in [
        (format!("10 {th} ima-ng sha256:zz /x"), "not hex"),
        (format!("10 {th} ima-foo {d} /x"), "unknown template"),
        (format!("10 {th} ima-modsig {d} /x  {d} "), "ima-modsig"),
        (
            format!("10 {} ima-ng {d} /x", "1".repeat(41)),
            "odd template hash",
        ),
        (
            format!("10 {th} ima-ng sha256:{} /x", "22".repeat(31)),
            "short digest",
        ),
        (format!("99 {th} ima-ng {d} /x"), "PCR out of range"),
        ("10".to_owned(), "missing fields"),
        (
            format!("10 {th} ima-ng sha256:\u{FFFD}\u{FFFD} /x"),
            "replacement characters",
        ),
        (
            format!("10 {th} ima-sig {d} /x 0302\u{FFFD}"),
            "replacement in sig",
        ),
    ] {
        let v = run(&with_line(1, &line));
        assert_eq!(ids(&v)[0], "parser.entry", "{reason}: {:?}", v.failures);
        let msg = v.failures[0].message().unwrap();
        assert!(
            msg.starts_with("Line was not parsable into a valid IMA entry: "),
            "{msg}"
        );
        assert!(v.failures[0].context["reason"].is_string(), "{reason}");
        assert_eq!(v.evaluated_entries, 0, "{reason}");
        assert_eq!(v.next_state, ImaState::default(), "{reason}");
        // the unparsable line is not extended, so the quote is not reached either
        assert_eq!(ids(&v).last(), Some(&"pcr_mismatch"), "{reason}");
    }
}

#[test]
fn replacement_characters_in_a_name_are_just_a_different_name() {
    // a caller that decoded invalid UTF-8 lossily hands over U+FFFD; the template hash no
    // longer covers the line
    let line = good_log()
        .text
        .lines()
        .nth(1)
        .unwrap()
        .replace("/b", "/\u{FFFD}");
    let v = run(&with_line(1, &line));
    assert_eq!(ids(&v), vec!["validation.ima_hash", "pcr_mismatch"]);
    // a U+FFFD name measured as such is an ordinary entry
    let mut log = LogBuilder::new();
    log.file("/tmp/\u{FFFD}name");
    let pcr = log.pcr(HashAlg::Sha256);
    let v = check(
        &input(&log.text, 0, HashAlg::Sha256, &pcr, Some(&all_listed())),
        &ImaState::default(),
    );
    assert_eq!(ids(&v), vec!["validation.ima-ng.not_in_allowlist"]);
    assert_eq!(
        v.failures[0].message(),
        Some("File not found in allowlist: /tmp/\u{FFFD}name")
    );
}

#[test]
fn oversized_fields_are_bounded() {
    let long = format!(
        "10 {} ima-ng sha256:{} /{}",
        "11".repeat(20),
        "22".repeat(32),
        "x".repeat(MAX_LINE_LEN)
    );
    let v = run(&with_line(0, &long));
    assert_eq!(ids(&v)[0], "parser.entry");
    let msg = v.failures[0].message().unwrap();
    assert!(
        msg.len() < 2048,
        "the quoted line is cut: {} bytes",
        msg.len()
    );
    // a large but valid buffer and signature are handled (no key, not listed)
    let mut log = LogBuilder::new();
    log.ima_buf("big-buffer", &vec![0x41; 200_000]);
    let mut sig = vec![3, 2, 4, 1, 2, 3, 4, 0xff, 0xff];
    sig.extend_from_slice(&[0x55; 0xffff]);
    log.ima_sig("/big-sig", "sha256", &[1; 32], &sig);
    let pcr = log.pcr(HashAlg::Sha256);
    let v = check(
        &input(&log.text, 0, HashAlg::Sha256, &pcr, Some(&all_listed())),
        &ImaState::default(),
    );
    assert_eq!(
        ids(&v),
        vec![
            "validation.ima-ng.not_in_allowlist",
            "validation.ima-ng.not_in_allowlist"
        ]
    );
}

#[test]
fn malformed_signature_headers_and_odd_key_material() {
    // sig_size says 3 but 2 bytes follow: upstream hashes it as unsigned → ima_hash
    let mut log = LogBuilder::new();
    log.ima_sig(
        "/a",
        "sha256",
        &common::file_digest("/a"),
        &[3, 2, 4, 0, 0, 0, 1, 0, 3, 9, 9],
    );
    let pcr = log.pcr(HashAlg::Sha256);
    let v = check(
        &input(&log.text, 0, HashAlg::Sha256, &pcr, Some(&all_listed())),
        &ImaState::default(),
    );
    assert_eq!(ids(&v), vec!["validation.ima_hash"]);
    assert!(v.failures[0].message().unwrap().contains("/a"));
    assert_eq!(v.evaluated_entries, 0);

    // ima-buf: DER-looking garbage is an ordinary buffer; an Ed25519 key is invalid_key
    let mut ed = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    ed.extend_from_slice(&[7; 32]);
    let mut log = LogBuilder::new();
    log.ima_buf("garbage", &[0x30, 0x82, 0xff, 0xff, 0x01]);
    log.ima_buf(".ima", &ed);
    let pcr = log.pcr(HashAlg::Sha256);
    let v = check(
        &input(&log.text, 0, HashAlg::Sha256, &pcr, Some(&all_listed())),
        &ImaState::default(),
    );
    assert_eq!(
        ids(&v),
        vec!["validation.ima-ng.not_in_allowlist", "invalid_key"]
    );
    assert_eq!(
        v.failures[1].message(),
        Some("key from .ima does not have a supported key: unsupported key type Ed25519")
    );
}

#[test]
fn a_huge_garbage_list_gives_bounded_output() {
    let garbage = "10 nothex ima-ng a b\n".repeat(300_000);
    let v = run(&garbage);
    // every line is looked at once, none is chained or evaluated, and what is reported
    // does not grow with the input: MAX_EVENTS_PER_ID events (plus the PCR mismatch), the
    // rest counted as suppressed, each message cut to a bounded size
    assert_eq!(v.failures.len(), MAX_EVENTS_PER_ID as usize + 1);
    assert_eq!(v.suppressed, 300_000 - u64::from(MAX_EVENTS_PER_ID));
    assert!(!v.passed());
    assert_eq!(v.chain_entries, 0);
    assert_eq!(v.evaluated_entries, 0);
    let reported: usize = v
        .failures
        .iter()
        .map(|f| f.message().map_or(0, str::len) + f.context.to_string().len())
        .sum();
    assert!(
        reported < v.failures.len() * 4096,
        "{reported} bytes reported for {} events",
        v.failures.len()
    );
}

#[test]
fn bad_quote_values_and_stored_state_are_failures_not_panics() {
    let log = good_log();
    let policy = all_listed();
    let v = check(
        &input(&log.text, 0, HashAlg::Sha256, &[0; 7], Some(&policy)),
        &ImaState::default(),
    );
    assert_eq!(ids(&v), vec!["pcr_mismatch"]);
    assert!(
        v.failures[0].context["reason"]
            .as_str()
            .unwrap()
            .contains("7 bytes")
    );
    let v = check(
        &input(&log.text, 0, HashAlg::Sm3_256, &[0; 32], Some(&policy)),
        &ImaState::default(),
    );
    assert_eq!(ids(&v), vec!["pcr_mismatch"]);
    let corrupt = ImaState {
        next_entry: 3,
        pcr10: Some("zz".into()),
        bank: Some("sha256".into()),
        ..ImaState::default()
    };
    let v = check(
        &input("", 3, HashAlg::Sha256, &[0; 32], Some(&policy)),
        &corrupt,
    );
    assert_eq!(ids(&v), vec!["pcr_mismatch"]);
    let short = ImaState {
        pcr10: Some("00".into()),
        ..corrupt
    };
    let v = check(
        &input("", 3, HashAlg::Sha256, &[0; 32], Some(&policy)),
        &short,
    );
    assert_eq!(ids(&v), vec!["pcr_mismatch"]);
    // an empty chunk whose quote equals the stored value passes
    let ok = ImaState {
        pcr10: Some(hexs(&[5; 32])),
        ..short
    };
    let v = check(&input("", 3, HashAlg::Sha256, &[5; 32], Some(&policy)), &ok);
    assert!(v.passed(), "{:?}", v.failures);
    assert_eq!(v.next_state.next_entry, 3);
}

#[test]
fn regex_bombs_and_bad_keyrings_are_policy_errors() {
    let mut p = RuntimePolicy::empty();
    for bomb in [
        "((a{100}){100}){100}",
        "(\\w{500}){500}",
        "[\\p{L}\\p{N}]{1000}{1000}",
    ] {
        p.excludes = vec!["/tmp/.*".into(), bomb.into()];
        let e = PreparedRuntimePolicy::prepare(&p).unwrap_err();
        // refused by the compiler's size limit, which stops compiling as soon as the
        // program outgrows it: the work is bounded by the limit, not by the pattern
        let refused_by_limit =
            format!("compiles to more than the {EXCLUDES_SIZE_LIMIT}-byte limit");
        assert!(
            matches!(&e, PolicyError::Exclude { pattern, problem }
                if pattern == bomb && *problem == refused_by_limit),
            "{bomb}: {e}"
        );
    }
    // patterns fine alone but too big together
    p.excludes = (0..64).map(|i| format!("/p{i}/\\w{{20}}")).collect();
    let e = PreparedRuntimePolicy::prepare(&p).unwrap_err();
    assert!(
        matches!(&e, PolicyError::Exclude { pattern, .. } if pattern == "all 64 patterns together"),
        "{e}"
    );
    p.excludes = vec!["(?P<x>a)(?P=x)".into()];
    assert!(matches!(
        PreparedRuntimePolicy::prepare(&p),
        Err(PolicyError::Exclude { .. })
    ));
    p.excludes = (0..2000).map(|i| format!("/opt/app{i}/.*")).collect();
    let prepared = PreparedRuntimePolicy::prepare(&p).unwrap();
    assert!(prepared.is_excluded("/opt/app1999/x"));
    assert!(!prepared.is_excluded("/opt/app2000/x"));

    p.excludes.clear();
    for bad in ["{", "[]", r#"{"keyids": [], "pubkeys": ["%%%"]}"#] {
        p.verification_keys = bad.into();
        let e = PreparedRuntimePolicy::prepare(&p).unwrap_err();
        assert!(matches!(e, PolicyError::VerificationKeys(_)), "{bad}: {e}");
    }
}

#[test]
fn a_large_policy_is_indexed_once_per_path() {
    let p = policy_for((0..100_000).map(|i| format!("/usr/share/doc/pkg{i}/file{i}")));
    let prepared = PreparedRuntimePolicy::prepare(&p).unwrap();
    // one index entry per path, each with its one digest (the `check` benchmark times
    // this as prepare_100k_paths)
    assert_eq!(prepared.digest_names(), 100_000);
    for i in [0, 5, 99_999] {
        let path = format!("/usr/share/doc/pkg{i}/file{i}");
        assert_eq!(
            prepared.file_digests(&path).map(|d| d.len()),
            Some(1),
            "{path}"
        );
    }
    assert!(
        prepared
            .file_digests("/usr/share/doc/pkg100000/file100000")
            .is_none()
    );
}

#[test]
fn random_mutations_of_real_lists_never_panic() {
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x1a1a);
    let sources: Vec<Vec<u8>> = [
        "ima/keylime-tests/ascii_runtime_measurements-ima-buf",
        "ima/keylime-tests/ascii_runtime_measurements-ima-sig",
        "ima/keylime-unit-tests/ima_verification/signatures.txt",
        "ima/keylime/ascii_runtime_measurements_ima",
    ]
    .iter()
    .map(|r| std::fs::read(keylime_testkit::testdata(r)).unwrap())
    .collect();
    let mut policy = policy_for(["/usr/bin/dd".to_owned()]);
    policy.excludes = vec!["/usr/lib/systemd/.*".into()];
    policy.keyrings.insert(".ima".into(), vec!["ab".repeat(32)]);
    let policy = prepare(&policy);
    let mut checked = 0;
    for round in 0..300 {
        let mut data = sources[round % sources.len()].clone();
        for _ in 0..rng.gen_range(1..8) {
            let i = rng.gen_range(0..data.len());
            match rng.gen_range(0..4) {
                0 => data[i] = rng.r#gen(),
                1 => {
                    data.remove(i);
                }
                2 => data.insert(i, b" \n0:fz"[rng.gen_range(0..6)]),
                _ => data.truncate(i),
            }
            if data.is_empty() {
                break;
            }
        }
        let text = String::from_utf8_lossy(&data);
        let bank = if round % 2 == 0 {
            HashAlg::Sha1
        } else {
            HashAlg::Sha256
        };
        let quoted = vec![round as u8 | 1; bank.digest_len()];
        let v = check(
            &input(&text, 0, bank, &quoted, Some(&policy)),
            &ImaState::default(),
        );
        // an arbitrary quoted value is never reached
        assert!(
            v.failures.iter().any(|f| f.id == "pcr_mismatch"),
            "round {round}"
        );
        checked += 1;
    }
    assert_eq!(checked, 300);
}
