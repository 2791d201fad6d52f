//! Every ASCII IMA log under testdata/ima parses, and its template-hash self-check and
//! sha1-bank PCR 10 replay equal what INDEX.json records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use keylime_ima::{ChainVerifier, EntryCheck, HashAlg, ImaError, Replay, parse_log};
use keylime_testkit::testdata;

fn ascii_logs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("readable testdata dir") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            ascii_logs(&p, out);
        } else if !matches!(p.extension().and_then(|x| x.to_str()), Some("json" | "bin")) {
            out.push(p);
        }
    }
}

fn rel(p: &Path) -> String {
    let root = testdata("");
    p.strip_prefix(&root)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_ascii_log_parses_except_the_negative_sample() {
    let mut logs = Vec::new();
    ascii_logs(&testdata("ima"), &mut logs);
    assert!(logs.len() >= 15, "found only {logs:?}");
    for p in logs {
        let name = rel(&p);
        let text = std::fs::read_to_string(&p).unwrap();
        let parsed: Result<Vec<_>, ImaError> = parse_log(&text).collect();
        if name.ends_with("invalid_ima_log.txt") {
            let e = parsed.expect_err("negative sample must fail");
            assert!(matches!(e, ImaError::Parse { line: 1, .. }), "{e}");
        } else {
            let entries = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                entries.len(),
                text.lines().filter(|l| !l.is_empty()).count(),
                "{name}"
            );
        }
    }
}

#[test]
fn template_hashes_and_sha1_replay_match_index() {
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(testdata("ima/INDEX.json")).unwrap())
            .unwrap();
    let mut checked = 0;
    for (name, want) in index.as_object().unwrap() {
        if name.ends_with(".bin") || name.ends_with("invalid_ima_log.txt") {
            continue;
        }
        let text = std::fs::read_to_string(testdata(name)).unwrap();
        let entries: Vec<_> = parse_log(&text).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            entries.len() as u64,
            want["entries"].as_u64().unwrap(),
            "{name}"
        );

        let mut templates: BTreeMap<String, u64> = BTreeMap::new();
        let mut v = ChainVerifier::new(HashAlg::Sha1, &[HashAlg::Sha1]).unwrap();
        // the collector replays column 2 in the bank of its size (sha256 for 32-byte hashes)
        let th_len = want["template_hash_len"].as_u64().unwrap_or(20) as usize;
        let col2_bank = if th_len == 32 {
            HashAlg::Sha256
        } else {
            HashAlg::Sha1
        };
        let mut col2 = Replay::new(col2_bank).unwrap();
        let (mut ok, mut mismatch) = (0u64, 0u64);
        for e in &entries {
            *templates.entry(e.template.name().to_owned()).or_default() += 1;
            match v.process(e) {
                EntryCheck::Ok => ok += 1,
                EntryCheck::Mismatch { .. } => mismatch += 1,
                EntryCheck::Violation => {}
            }
            if e.is_violation() {
                col2.extend_measurement(&vec![0xFF; col2_bank.digest_len()]);
            } else {
                col2.extend_measurement(e.template_hash.as_slice());
            }
        }
        let thc = &want["template_hash_check"];
        assert_eq!(ok, thc["ok"].as_u64().unwrap(), "{name} ok");
        assert_eq!(
            mismatch,
            thc["mismatch"].as_u64().unwrap(),
            "{name} mismatch"
        );
        let want_templates: BTreeMap<String, u64> =
            serde_json::from_value(want["templates"].clone()).unwrap();
        assert_eq!(templates, want_templates, "{name}");
        if let Some(pcr) = want["pcr_sha1_aggregate"]["10"].as_str() {
            assert_eq!(col2.value().to_hex(), pcr, "{name} column-2 replay");
            if mismatch == 0 && th_len == 20 {
                // recomputed template data replays to the same value in the sha1 bank
                assert_eq!(v.value(HashAlg::Sha1).unwrap().to_hex(), pcr, "{name}");
            }
        }
        checked += 1;
    }
    assert!(checked >= 12, "{checked}");
}
