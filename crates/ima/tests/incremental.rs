//! Incremental replay (resume over chunks) equals one-shot replay; the quoted PCR 10 is found
//! at any position; mutated logs are caught.

use keylime_ima::{ChainVerifier, EntryCheck, HashAlg, ImaError, Replay, parse_log};
use keylime_testkit::testdata;

const BANKS: [HashAlg; 3] = [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384];

fn log() -> String {
    std::fs::read_to_string(testdata("ima/rust-keylime/ascii_runtime_measurements")).unwrap()
}

fn one_shot(text: &str, bank: HashAlg) -> Replay {
    let mut r = Replay::new(bank).unwrap();
    r.feed(parse_log(text)).unwrap();
    r
}

/// The value after the first `k` entries.
fn value_after(text: &str, bank: HashAlg, k: usize) -> Vec<u8> {
    let mut r = Replay::new(bank).unwrap();
    r.feed(parse_log(text).take(k)).unwrap();
    r.value().as_slice().to_vec()
}

#[test]
fn chunked_resume_equals_one_shot_in_every_bank() {
    let text = log();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 826);
    for bank in BANKS {
        let full = one_shot(&text, bank);
        let mut value = vec![0u8; bank.digest_len()];
        let mut index = 0u64;
        let mut at = 0;
        for size in [1usize, 7, 100, 301, 1000].iter().cycle().take(50) {
            if at >= lines.len() {
                break;
            }
            let end = (at + size).min(lines.len());
            let chunk = lines[at..end].join("\n");
            let mut r = Replay::resume(bank, &value, index).unwrap();
            r.feed(parse_log(&chunk)).unwrap();
            value = r.value().as_slice().to_vec();
            index = r.next_entry();
            at = end;
        }
        assert_eq!(index, 826);
        assert_eq!(value.as_slice(), full.value().as_slice(), "{bank}");
        assert_ne!(
            full.value().as_slice(),
            vec![0u8; bank.digest_len()].as_slice()
        );
    }
}

#[test]
fn quoted_value_is_found_at_its_position() {
    let text = log();
    for bank in BANKS {
        for k in [0usize, 1, 2, 413, 825, 826] {
            let quoted = value_after(&text, bank, k);
            let mut r = Replay::new(bank).unwrap();
            let m = r
                .find_quoted(parse_log(&text), &quoted)
                .unwrap()
                .expect("found");
            assert_eq!(m.next_entry, k as u64, "{bank} k={k}");
            assert_eq!(m.values[0].1.as_slice(), quoted.as_slice());
            assert_eq!(r.next_entry(), 826, "replay continues to the end");

            let mut chain = ChainVerifier::new(HashAlg::Sha1, &BANKS).unwrap();
            chain.expect_quoted(bank, &quoted).unwrap();
            for e in parse_log(&text) {
                assert_eq!(chain.process(&e.unwrap()), EntryCheck::Ok);
            }
            let m = chain.quoted_match().expect("chain found the quote");
            assert_eq!(m.next_entry, k as u64);
            assert_eq!(m.values.len(), 3);
            for (b, v) in &m.values {
                assert_eq!(v.as_slice(), value_after(&text, *b, k).as_slice());
            }
        }
        // a value not on the chain
        let mut r = Replay::new(bank).unwrap();
        let bogus = vec![0x5a; bank.digest_len()];
        assert_eq!(r.find_quoted(parse_log(&text), &bogus).unwrap(), None);
    }
}

#[test]
fn resumed_replay_finds_a_later_quote_with_absolute_index() {
    let text = log();
    let lines: Vec<&str> = text.lines().collect();
    let bank = HashAlg::Sha256;
    let start = value_after(&text, bank, 300);
    let quoted = value_after(&text, bank, 500);
    let tail = lines[300..].join("\n");
    let mut r = Replay::resume(bank, &start, 300).unwrap();
    let m = r.find_quoted(parse_log(&tail), &quoted).unwrap().unwrap();
    assert_eq!(m.next_entry, 500);
}

#[test]
fn mutations_break_the_chain() {
    let text = log();
    let lines: Vec<&str> = text.lines().collect();
    let bank = HashAlg::Sha1;
    let quoted = one_shot(&text, bank).value().as_slice().to_vec();

    // one entry removed from the middle: the quote is never reached
    let mut removed = lines.clone();
    removed.remove(400);
    let removed = removed.join("\n");
    let mut r = Replay::new(bank).unwrap();
    assert_eq!(r.find_quoted(parse_log(&removed), &quoted).unwrap(), None);

    // two entries swapped
    let mut swapped = lines.clone();
    swapped.swap(10, 11);
    let mut r = Replay::new(bank).unwrap();
    assert_eq!(
        r.find_quoted(parse_log(&swapped.join("\n")), &quoted)
            .unwrap(),
        None
    );

    // a file digest changed: the template hash no longer matches, on exactly that line
    let mut edited = lines.clone();
    let target = edited[200].to_owned();
    let (head, tail) = target.split_at(target.find("sha1:").unwrap() + 5);
    let flipped = if tail.starts_with('0') { "1" } else { "0" };
    let changed = format!("{head}{flipped}{}", &tail[1..]);
    edited[200] = &changed;
    let mut chain = ChainVerifier::new(HashAlg::Sha1, &[bank]).unwrap();
    chain.expect_quoted(bank, &quoted).unwrap();
    let mut bad = Vec::new();
    for e in parse_log(&edited.join("\n")) {
        let e = e.unwrap();
        if let EntryCheck::Mismatch { computed } = chain.process(&e) {
            assert_ne!(computed, e.template_hash);
            bad.push(e.line);
        }
    }
    assert_eq!(bad, vec![201]);
    assert!(chain.quoted_match().is_none());
}

#[test]
fn replay_argument_errors() {
    assert_eq!(
        Replay::new(HashAlg::Sm3_256).unwrap_err(),
        ImaError::UnsupportedBank(HashAlg::Sm3_256)
    );
    assert!(matches!(
        Replay::resume(HashAlg::Sha256, &[0; 20], 0),
        Err(ImaError::ValueLength {
            len: 20,
            expected: 32,
            ..
        })
    ));
    let mut r = Replay::new(HashAlg::Sha1).unwrap();
    assert!(matches!(
        r.find_quoted(parse_log(""), &[0; 32]),
        Err(ImaError::ValueLength { .. })
    ));
    let mut c = ChainVerifier::new(HashAlg::Sha1, &[HashAlg::Sha1]).unwrap();
    assert_eq!(
        c.expect_quoted(HashAlg::Sha256, &[0; 32]),
        Err(ImaError::UnsupportedBank(HashAlg::Sha256))
    );
}

#[test]
fn log_hash_alg_selects_the_template_hash_algorithm() {
    // a log written with ima_template_hash=sha256-like column 2
    let base = format!("ima-ng sha256:{} /usr/bin/true", "ab".repeat(32));
    let probe_line = format!("10 00 {base}");
    let probe = keylime_ima::parse_line(&probe_line, 1).unwrap();
    let th = keylime_ima::template_hash(&probe, HashAlg::Sha256).unwrap();
    let line = format!("10 {} {base}", th.to_hex());
    let entry = keylime_ima::parse_line(&line, 1).unwrap();

    let mut sha256_log = ChainVerifier::new(HashAlg::Sha256, &[HashAlg::Sha1]).unwrap();
    assert_eq!(sha256_log.process(&entry), EntryCheck::Ok);
    let mut sha1_log = ChainVerifier::new(HashAlg::Sha1, &[HashAlg::Sha1]).unwrap();
    assert!(matches!(
        sha1_log.process(&entry),
        EntryCheck::Mismatch { .. }
    ));
    // the sha256 bank extends H_sha256(template data), i.e. column 2 here
    let mut bank = Replay::new(HashAlg::Sha256).unwrap();
    bank.extend_entry(&entry);
    let mut manual = Replay::new(HashAlg::Sha256).unwrap();
    manual.extend_measurement(th.as_slice());
    assert_eq!(bank.value(), manual.value());
}
