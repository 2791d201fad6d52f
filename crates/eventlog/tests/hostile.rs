//! Malformed and hostile input: every truncation of a real log, corrupted digest counts,
//! unknown algorithms and oversized sizes give a typed error (or a shorter parse), never a
//! panic or an allocation beyond the input.

use keylime_eventlog::{EventData, EventDataError, EventLog, EventLogError, EventType, replay};

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(keylime_testkit::testdata(rel)).expect("read test log")
}

#[test]
fn every_truncation_errors_or_parses_shorter() {
    for rel in [
        "eventlog/tpm2-tools/event-sd-boot-fedora37.bin",
        "eventlog/tpm2-tools/event-uefi-sha1-log.bin",
        "eventlog/go-tpm-tools/glinux-alex.bin",
    ] {
        let bytes = read(rel);
        let full = EventLog::parse(&bytes)
            .expect("full log parses")
            .events
            .len();
        for len in 0..bytes.len() {
            match EventLog::parse(&bytes[..len]) {
                Ok(log) => {
                    assert!(log.events.len() <= full, "{rel}[..{len}] grew");
                    let _ = replay(&log);
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
    }
}

/// Offset of the digest count of the first TCG_PCR_EVENT2 record.
fn first_event2(bytes: &[u8]) -> usize {
    let log = EventLog::parse(bytes).expect("parse");
    log.events[1].offset
}

#[test]
fn digest_count_beyond_spec_table_is_rejected() {
    let mut bytes = read("eventlog/tpm2-tools/event-sd-boot-fedora37.bin");
    let at = first_event2(&bytes);
    bytes[at + 8..at + 12].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    assert!(matches!(
        EventLog::parse(&bytes),
        Err(EventLogError::DigestCount {
            event: 1,
            count: 0xFFFF_FFFF,
            max: 1,
            ..
        })
    ));
}

#[test]
fn unknown_algorithm_is_rejected_with_its_id() {
    let mut bytes = read("eventlog/tpm2-tools/event-sd-boot-fedora37.bin");
    let at = first_event2(&bytes);
    bytes[at + 12..at + 14].copy_from_slice(&0x1234u16.to_le_bytes());
    assert!(matches!(
        EventLog::parse(&bytes),
        Err(EventLogError::UnknownAlgorithm {
            event: 1,
            alg: 0x1234,
            ..
        })
    ));
}

#[test]
fn huge_event_size_is_rejected_without_allocating() {
    let mut bytes = read("eventlog/tpm2-tools/event-sd-boot-fedora37.bin");
    let at = first_event2(&bytes);
    let size_at = at + 12 + 2 + 32;
    bytes[size_at..size_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    match EventLog::parse(&bytes) {
        Err(EventLogError::EventTooLarge { event, size, .. }) => {
            assert_eq!((event, size), (1, u64::from(u32::MAX)));
        }
        other => panic!("expected EventTooLarge, got {other:?}"),
    }
}

#[test]
fn spec_id_with_absurd_algorithm_count_is_rejected() {
    let mut bytes = read("eventlog/tpm2-tools/event-sd-boot-fedora37.bin");
    // numberOfAlgorithms sits at 32 (header) + 24 (spec ID fields).
    bytes[56..60].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        EventLog::parse(&bytes),
        Err(EventLogError::BadSpecId { offset: 0, .. })
    ));
}

#[test]
fn unknown_algorithm_listed_in_spec_id_is_skipped_by_size() {
    // Spec ID listing SHA-256 and an unknown 0x00FE of 8 bytes; one event with both digests.
    let mut log = Vec::new();
    let mut spec = b"Spec ID Event03\0".to_vec();
    spec.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 2]);
    spec.extend_from_slice(&2u32.to_le_bytes());
    spec.extend_from_slice(&[0x0b, 0, 32, 0, 0xfe, 0, 8, 0, 0]);
    log.extend_from_slice(&[0, 0, 0, 0, 3, 0, 0, 0]);
    log.extend_from_slice(&[0; 20]);
    log.extend_from_slice(&(spec.len() as u32).to_le_bytes());
    log.extend_from_slice(&spec);
    let data = [0u8; 4];
    log.extend_from_slice(&[7, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0]);
    log.extend_from_slice(&[0xfe, 0]);
    log.extend_from_slice(&[0xAA; 8]);
    log.extend_from_slice(&[0x0b, 0]);
    log.extend_from_slice(&keylime_eventlog::HashAlg::Sha256.digest(&data));
    log.extend_from_slice(&4u32.to_le_bytes());
    log.extend_from_slice(&data);
    let parsed = EventLog::parse(&log).expect("parse");
    assert_eq!(parsed.events.len(), 2);
    assert_eq!(parsed.events[1].digests[0].hash_alg(), None);
    let banks = replay(&parsed);
    assert_eq!(banks.len(), 1, "only the SHA-256 bank is replayed");
}

#[test]
fn garbage_variable_data_is_a_decode_error_not_a_parse_error() {
    let err = keylime_eventlog::decode(
        EventType::EV_EFI_VARIABLE_DRIVER_CONFIG,
        &[0u8; 16]
            .iter()
            .chain(&u64::MAX.to_le_bytes())
            .copied()
            .collect::<Vec<_>>(),
    );
    assert!(matches!(err, Err(EventDataError::Truncated { .. })));
    let huge_name: Vec<u8> = [0u8; 16]
        .iter()
        .chain(&u64::MAX.to_le_bytes())
        .chain(&0u64.to_le_bytes())
        .copied()
        .collect();
    assert!(matches!(
        keylime_eventlog::decode(EventType::EV_EFI_VARIABLE_BOOT, &huge_name),
        Err(EventDataError::Truncated {
            what: "UnicodeName",
            ..
        })
    ));
    assert!(matches!(
        keylime_eventlog::decode(EventType::EV_SEPARATOR, &[0xFF; 4]),
        Ok(EventData::Separator { error: true, .. })
    ));
}

#[test]
fn every_event_of_every_log_decodes_without_panicking() {
    let mut decoded = 0;
    for rel in [
        "eventlog/keylime/binary_bios_measurements",
        "eventlog/keylime/binary_bios_measurements-secureboot",
        "eventlog/rust-keylime/uefi_log.bin",
        "eventlog/python3-uefi-eventlog/ideapad1.bin",
    ] {
        let log = EventLog::parse(&read(rel)).expect("parse");
        for e in &log.events {
            e.decode()
                .unwrap_or_else(|err| panic!("{rel} event {}: {err}", e.number));
            decoded += 1;
        }
    }
    assert!(decoded > 300);
}

/// Truncated logs through the whole measured-boot check, and truncated and bit-flipped logs
/// through the inspection and reference-state derivation: never a panic. What the check
/// says about each flipped byte is in `flipped_bytes.rs`.
#[test]
fn damaged_logs_through_the_policy_check_and_inspection() {
    use std::collections::BTreeMap;

    use keylime_eventlog::{HashAlg, PreparedMbPolicy, check, inspect_json, refstate_from_log};

    let bytes = read("eventlog/keylime-tests/mb_log_secureboot.bin");
    let refstate = refstate_from_log(&bytes, true).expect("refstate");
    let policy = PreparedMbPolicy::prepare("example", Some(&refstate)).expect("prepare");
    let banks = replay(&EventLog::parse(&bytes).expect("parse"));
    let quoted: BTreeMap<u8, Vec<u8>> = banks[&HashAlg::Sha256]
        .iter()
        .map(|(pcr, v)| (*pcr as u8, v.clone()))
        .collect();
    let mut rejected = 0;
    for len in (0..bytes.len()).step_by(13) {
        let verdict = check(&bytes[..len], HashAlg::Sha256, &quoted, &policy);
        rejected += usize::from(!verdict.failures.is_empty());
        let _ = inspect_json(&bytes[..len]);
        let _ = refstate_from_log(&bytes[..len], true);
    }
    assert!(rejected > bytes.len() / 13 - 2, "{rejected}");
    for at in (0..bytes.len()).step_by(29) {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0xA5;
        let _ = inspect_json(&flipped);
        if let Ok(refstate) = refstate_from_log(&flipped, true) {
            let _ = PreparedMbPolicy::prepare("example", Some(&refstate));
        }
    }
}
