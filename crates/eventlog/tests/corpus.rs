//! Every event log in the shared corpus parses, and its replay equals the PCR values that
//! INDEX.json and `eventlog/expected/*.pcrs.json` record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use keylime_eventlog::{
    DigestCheck, EventLog, EventLogError, EventType, HashAlg, LogFormat, TrailingKind, replay,
};
use serde_json::Value;

/// Files in the corpus that are deliberately not event logs.
const NOT_LOGS: &[&str] = &[
    "eventlog/keylime/binary_bios_measurements-bogus",
    "eventlog/keylime/binary_bios_measurements-empty",
    "eventlog/go-eventlog-ccel/CCEL.acpi-table.bin",
];

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read corpus dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "expected") {
                walk(&path, out);
            }
        } else if path.file_name().is_some_and(|n| n != "INDEX.json") {
            out.push(path);
        }
    }
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let root = keylime_testkit::testdata("");
    let mut files = Vec::new();
    walk(&keylime_testkit::testdata("eventlog"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&root)
                .expect("under testdata")
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read(&p).expect("read log"))
        })
        .collect()
}

fn index() -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(keylime_testkit::testdata("eventlog/INDEX.json"))
        .expect("INDEX.json");
    serde_json::from_str(&text).expect("INDEX.json is JSON")
}

fn hex_banks(log: &EventLog) -> BTreeMap<String, BTreeMap<String, String>> {
    replay(log)
        .into_iter()
        .map(|(alg, pcrs)| {
            let pcrs = pcrs
                .into_iter()
                .map(|(i, v)| (i.to_string(), hex::encode(v)))
                .collect();
            (alg.name().to_string(), pcrs)
        })
        .collect()
}

fn as_banks(v: &Value) -> BTreeMap<String, BTreeMap<String, String>> {
    serde_json::from_value(v.clone()).expect("bank → pcr → hex")
}

#[test]
fn every_log_parses_and_matches_index() {
    let index = index();
    let files = corpus();
    assert!(files.len() >= 45, "corpus too small: {}", files.len());
    let mut checked_replays = 0;
    for (rel, bytes) in &files {
        if NOT_LOGS.contains(&rel.as_str()) {
            assert!(EventLog::parse(bytes).is_err(), "{rel} must be rejected");
            continue;
        }
        let log = EventLog::parse(bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let Some(entry) = index.get(rel) else {
            panic!("{rel} is not described in INDEX.json")
        };
        assert_eq!(
            log.events.len() as u64,
            entry["events"].as_u64().expect("events"),
            "{rel}: event count"
        );
        let legacy = entry["format"]
            .as_str()
            .is_some_and(|f| f.starts_with("TCG1.2"));
        assert_eq!(log.format == LogFormat::Sha1Legacy, legacy, "{rel}: format");
        assert_eq!(
            log.startup_locality.map(u64::from),
            entry["startup_locality"].as_u64(),
            "{rel}: startup locality"
        );
        let trailing = log.trailing.map_or(0, |t| t.len) as u64;
        assert_eq!(
            trailing,
            entry["trailing_bytes"].as_u64().unwrap_or(0),
            "{rel}: trailing"
        );
        if let Some(spec) = &log.spec_id {
            let algs: Vec<&str> = spec
                .algorithms
                .iter()
                .filter_map(|a| HashAlg::from_tpm_id(a.alg_id).map(HashAlg::name))
                .collect();
            let want: Vec<&str> = entry["algs"]
                .as_array()
                .expect("algs")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(algs, want, "{rel}: spec ID algorithms");
        }
        let want = as_banks(&entry["replayed_pcrs"]);
        assert_eq!(hex_banks(&log), want, "{rel}: replayed PCRs");
        checked_replays += usize::from(!want.is_empty());
    }
    assert!(
        checked_replays >= 40,
        "only {checked_replays} replays checked"
    );
}

#[test]
fn replay_equals_real_tpm_values() {
    let dir = keylime_testkit::testdata("eventlog/expected/go-tpm-tools");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("expected dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let log_name = name.trim_end_matches(".pcrs.json");
        let bytes = std::fs::read(keylime_testkit::testdata(&format!(
            "eventlog/go-tpm-tools/{log_name}.bin"
        )))
        .expect("log for expected values");
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let got = hex_banks(&EventLog::parse(&bytes).expect("parse"));
        for (bank, pcrs) in as_banks(&expected["pcr_banks"]) {
            for (pcr, value) in pcrs {
                assert_eq!(
                    got.get(&bank).and_then(|b| b.get(&pcr)),
                    Some(&value),
                    "{log_name} {bank} PCR {pcr}"
                );
                n += 1;
            }
        }
    }
    assert!(n > 100, "only {n} expected values compared");
}

#[test]
fn missing_exit_boot_services_events_explain_real_pcr5() {
    let bytes = std::fs::read(keylime_testkit::testdata(
        "eventlog/go-attestation/ebs_event_missing_eventlog",
    ))
    .expect("log");
    let log = EventLog::parse(&bytes).expect("parse");
    let mut pcr5 = replay(&log)[&HashAlg::Sha1][&5].clone();
    for s in [
        "Exit Boot Services Invocation",
        "Exit Boot Services Returned with Success",
    ] {
        pcr5 = HashAlg::Sha1.digest_parts(&[&pcr5, &HashAlg::Sha1.digest(s.as_bytes())]);
    }
    assert_eq!(
        hex::encode(pcr5),
        "31245808d6d35849bc394f6343f2b3ff908ed5e3"
    );
}

#[test]
fn quirks_are_handled() {
    let read = |rel: &str| std::fs::read(keylime_testkit::testdata(rel)).expect("read");
    // StartupLocality 3: PCR 0 starts at ...03.
    let log = EventLog::parse(&read("eventlog/go-tpm-tools/glinux-alex.bin")).expect("parse");
    assert_eq!(log.startup_locality, Some(3));
    // 0xFF padding (a 64 KiB firmware region) after the last event of a SHA-384 CC log.
    let log = EventLog::parse(&read("eventlog/go-eventlog-ccel/event_log.bin")).expect("parse");
    let t = log.trailing.expect("padding recorded");
    assert_eq!((t.offset, t.kind), (2703, TrailingKind::Padding));
    assert_eq!(
        replay(&log).keys().copied().collect::<Vec<_>>(),
        [HashAlg::Sha384]
    );
    // A non-standard event type is kept as its number.
    let log = EventLog::parse(&read("eventlog/rust-keylime/uefi_log.bin")).expect("parse");
    let odd = log
        .events
        .iter()
        .find(|e| e.event_type.0 == 0x8401)
        .expect("0x8401 event");
    assert_eq!(
        (odd.pcr, odd.event_type.name(), odd.data.len()),
        (2, None, 1)
    );
    assert_eq!(odd.event_type.to_string(), "0x00008401");
    // An event whose digest does not match its data is flagged, not rejected.
    let mut bytes = read("eventlog/go-tpm-tools/glinux-alex.bin");
    let log = EventLog::parse(&bytes).expect("parse");
    assert_eq!(log.mismatched_events().count(), 0);
    let action = log
        .events
        .iter()
        .find(|e| e.event_type == EventType::EV_S_CRTM_VERSION)
        .expect("an EV_S_CRTM_VERSION event");
    assert_eq!(action.digest_check, DigestCheck::Matches);
    let rec_len = 4
        + 4
        + 4
        + action
            .digests
            .iter()
            .map(|d| 2 + d.digest.len())
            .sum::<usize>()
        + 4;
    bytes[action.offset + rec_len] ^= 0x20;
    let tampered = EventLog::parse(&bytes).expect("still parses");
    let bad: Vec<usize> = tampered.mismatched_events().map(|e| e.number).collect();
    assert_eq!(bad, [action.number]);
    assert_eq!(
        replay(&tampered),
        replay(&log),
        "replay uses the logged digests"
    );
    // Negative samples name what is wrong.
    assert_eq!(EventLog::parse(&[]), Err(EventLogError::Empty));
    assert!(matches!(
        EventLog::parse(&read("eventlog/keylime/binary_bios_measurements-bogus")),
        Err(EventLogError::EventTooLarge { event: 0, .. })
    ));
    assert!(EventLog::parse(&read("eventlog/go-eventlog-ccel/CCEL.acpi-table.bin")).is_err());
}

/// The only events in the corpus whose digests do not match their data: systemd-boot's
/// command line in the Arch Linux log (tpm2-tools warns about event 24 too), and
/// authority variables old shims and GCE firmware measure with a digest over other bytes.
#[test]
fn digest_mismatches_are_exactly_the_known_ones() {
    let known: BTreeMap<&str, Vec<usize>> = [
        ("eventlog/go-tpm-tools/arch-linux-workstation.bin", vec![24]),
        ("eventlog/tpm2-tools/event-arch-linux.bin", vec![24]),
        ("eventlog/go-tpm-tools/cos-85-amd-sev.bin", vec![24, 42]),
        ("eventlog/go-tpm-tools/cos-93-amd-sev.bin", vec![24, 42]),
        ("eventlog/go-attestation/sb_cert_eventlog", vec![12, 14]),
        (
            "eventlog/python3-uefi-eventlog/bootlog-5.0.0-rhel-20210423T133156Z_8b0347a.bin",
            vec![20, 29],
        ),
    ]
    .into_iter()
    .collect();
    let mut checked = 0;
    for (rel, bytes) in corpus() {
        let Ok(log) = EventLog::parse(&bytes) else {
            continue;
        };
        let bad: Vec<usize> = log.mismatched_events().map(|e| e.number).collect();
        assert_eq!(
            bad,
            known.get(rel.as_str()).cloned().unwrap_or_default(),
            "{rel}"
        );
        checked += log
            .events
            .iter()
            .filter(|e| e.digest_check == DigestCheck::Matches)
            .count();
    }
    assert!(checked > 1500, "only {checked} events verified");
    let arch = EventLog::parse(
        &std::fs::read(keylime_testkit::testdata(
            "eventlog/tpm2-tools/event-arch-linux.bin",
        ))
        .expect("read"),
    )
    .expect("parse");
    let e = &arch.events[24];
    assert_eq!((e.pcr, e.event_type), (8, EventType::EV_IPL));
    let cos = EventLog::parse(
        &std::fs::read(keylime_testkit::testdata(
            "eventlog/go-tpm-tools/cos-85-amd-sev.bin",
        ))
        .expect("read"),
    )
    .expect("parse");
    for n in [24, 42] {
        assert_eq!(
            (cos.events[n].pcr, cos.events[n].event_type),
            (7, EventType::EV_EFI_VARIABLE_AUTHORITY)
        );
    }
}
