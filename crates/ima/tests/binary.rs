//! Binary measurement lists under testdata/ima: records, template-hash self-check and the
//! sha1 replay equal INDEX.json; trailing garbage is reported as a truncated record.

use std::collections::BTreeMap;

use keylime_ima::{ChainVerifier, EntryCheck, HashAlg, ImaError, ParseErrorKind, parse_binary_log};
use keylime_testkit::testdata;

#[test]
fn binary_logs_match_index() {
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(testdata("ima/INDEX.json")).unwrap())
            .unwrap();
    let mut checked = 0;
    for (name, want) in index.as_object().unwrap() {
        if !name.ends_with(".bin") {
            continue;
        }
        let data = std::fs::read(testdata(name)).unwrap();
        let trailing = want["trailing_bytes"].as_i64().unwrap();
        let mut v = ChainVerifier::new(HashAlg::Sha1, &[HashAlg::Sha1]).unwrap();
        let (mut ok, mut mismatch, mut n) = (0u64, 0u64, 0u64);
        let mut templates: BTreeMap<String, u64> = BTreeMap::new();
        let mut error = None;
        let mut pcrs = Vec::new();
        for r in parse_binary_log(&data) {
            match r {
                Ok(e) => {
                    n += 1;
                    pcrs.push(e.pcr);
                    let t = e.template().expect("known template");
                    *templates.entry(t.name().to_owned()).or_default() += 1;
                    match v.process(&e) {
                        EntryCheck::Ok => ok += 1,
                        EntryCheck::Mismatch { .. } => mismatch += 1,
                        EntryCheck::Violation => {}
                    }
                }
                Err(e) => error = Some(e),
            }
        }
        if trailing == 0 {
            assert!(error.is_none(), "{name}: {error:?}");
        } else {
            assert!(
                matches!(
                    error,
                    Some(ImaError::Binary {
                        kind: ParseErrorKind::Truncated { .. },
                        ..
                    })
                ),
                "{name}: {error:?}"
            );
        }
        if trailing < 0 {
            // the record itself is cut short: nothing usable
            assert_eq!(n, 0, "{name}");
            checked += 1;
            continue;
        }
        assert_eq!(n, want["entries"].as_u64().unwrap(), "{name}");
        let thc = &want["template_hash_check"];
        assert_eq!(ok, thc["ok"].as_u64().unwrap(), "{name}");
        assert_eq!(mismatch, thc["mismatch"].as_u64().unwrap(), "{name}");
        let want_templates: BTreeMap<String, u64> =
            serde_json::from_value(want["templates"].clone()).unwrap();
        assert_eq!(templates, want_templates, "{name}");
        assert!(pcrs.iter().all(|&p| p == 10), "{name}");
        let pcr = want["pcr_sha1_aggregate"]["10"].as_str().unwrap();
        assert_eq!(v.value(HashAlg::Sha1).unwrap().to_hex(), pcr, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 6);
}

#[test]
fn hostile_binary_records_error_without_panic() {
    let data = std::fs::read(testdata("ima/tpm2-tss/sml-ima-ng-sha1.bin")).unwrap();
    // every truncation and a sweep of byte mutations: errors or records, never a panic
    for cut in 0..data.len() {
        let _ = parse_binary_log(&data[..cut]).count();
    }
    for i in 0..data.len().min(200) {
        for b in [0x00, 0xFF, 0x7F] {
            let mut d = data.clone();
            d[i] = b;
            for e in parse_binary_log(&d).flatten() {
                let _ = keylime_ima::template_hash(&e, HashAlg::Sha256).unwrap();
            }
        }
    }
    // a huge declared length is refused without allocation
    let mut huge = vec![10, 0, 0, 0];
    huge.extend_from_slice(&[1; 20]);
    huge.extend_from_slice(&6u32.to_le_bytes());
    huge.extend_from_slice(b"ima-ng");
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    let e = parse_binary_log(&huge).next().unwrap().unwrap_err();
    assert!(
        matches!(
            e,
            ImaError::Binary {
                record: 1,
                offset: 0,
                kind: ParseErrorKind::BadLength { .. }
            }
        ),
        "{e}"
    );
}
