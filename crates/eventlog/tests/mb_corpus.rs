//! For every log of the corpus, the reference state derived from it is accepted by the
//! `example` policy, or the specific reason upstream's design rejects it is asserted.

mod common;

use std::collections::BTreeMap;

use common::{check_example, derive, ids, read, reason};
use keylime_eventlog::{EventLog, MbPolicyError, replay};
use serde_json::Value;

enum Outcome {
    /// The derived reference state is accepted.
    Accepts,
    /// The example policy rejects the log whatever the reference state (reason substring).
    Rejects(&'static str),
    /// The log lacks what the example policy needs, so no usable reference state can be
    /// derived (error substring).
    NoRefState(&'static str),
    /// Not an event log.
    NotALog,
}
use Outcome::*;

/// Every file of the corpus and what the `example` policy makes of it. Upstream's policy
/// rejects by design: any (PCR, event type) pair outside its table (EV_POST_CODE,
/// EV_NONHOST_INFO or EV_S_CRTM_CONTENTS on PCR 0), a second EV_NO_ACTION on PCR 0
/// (StartupLocality, SP800-155 events), a dbx of more than one signature list. Logs without
/// an S-CRTM version (confidential-VM logs, synthetic fixtures), without an initrd on
/// PCR 9 (COS, Ubuntu cloud images, RHEL's "grub_linuxefi Initrd"), with other than
/// shim + grub (+ kernel) boot applications (systemd-boot, a lone loader) or without a
/// SHA-256 bank (TPM 1.2 logs) cannot yield a reference state it can use.
const CORPUS: &[(&str, Outcome)] = &[
    (
        "eventlog/go-attestation/coreos_36_shielded_vm_no_secure_boot_eventlog",
        Rejects(
            "event 2 (PCR 0, EV_NONHOST_INFO) has an unexpected (PCRIndex, EventType) combination",
        ),
    ),
    (
        "eventlog/go-attestation/crypto_agile_eventlog",
        NoRefState("no initrd or initramfs EV_IPL event on PCR 9"),
    ),
    (
        "eventlog/go-attestation/ebs_event_missing_eventlog",
        NoRefState("event 1 has no sha256 digest"),
    ),
    (
        "eventlog/go-attestation/sb_cert_eventlog",
        NoRefState("no initrd or initramfs EV_IPL event on PCR 9"),
    ),
    (
        "eventlog/go-attestation/short_no_action_eventlog",
        NoRefState("no EV_S_CRTM_VERSION event"),
    ),
    ("eventlog/go-eventlog-ccel/CCEL.acpi-table.bin", NotALog),
    (
        "eventlog/go-eventlog-ccel/CCEL_unpadded.data.bin",
        NoRefState("no EV_S_CRTM_VERSION event"),
    ),
    (
        "eventlog/go-eventlog-ccel/cos-113-intel-tdx-dupe-separator-unpadded.bin",
        NoRefState("no EV_S_CRTM_VERSION event"),
    ),
    (
        "eventlog/go-eventlog-ccel/event_log.bin",
        NoRefState("no EV_S_CRTM_VERSION event"),
    ),
    (
        "eventlog/go-tpm-tools/arch-linux-workstation.bin",
        NoRefState("no initrd or initramfs EV_IPL event on PCR 9"),
    ),
    (
        "eventlog/go-tpm-tools/cos-85-amd-sev.bin",
        NoRefState("no initrd or initramfs EV_IPL event on PCR 9"),
    ),
    (
        "eventlog/go-tpm-tools/cos-93-amd-sev.bin",
        NoRefState("no initrd or initramfs EV_IPL event on PCR 9"),
    ),
    (
        "eventlog/go-tpm-tools/eventlogwithsp800155.bin",
        NoRefState("no initrd or initramfs EV_IPL event on PCR 9"),
    ),
    (
        "eventlog/go-tpm-tools/glinux-alex.bin",
        NoRefState("expected 2 UEFI applications to be booted (shim, grub), the log has 1"),
    ),
    (
        "eventlog/go-tpm-tools/rhel8-uefi.bin",
        NoRefState("no initrd or initramfs EV_IPL event on PCR 9"),
    ),
    (
        "eventlog/go-tpm-tools/ubuntu-1804-amd-sev.bin",
        Rejects(
            "event 2 (PCR 0, EV_NONHOST_INFO) has an unexpected (PCRIndex, EventType) combination",
        ),
    ),
    (
        "eventlog/go-tpm-tools/ubuntu-2104-no-dbx.bin",
        NoRefState("no initrd or initramfs EV_IPL event on PCR 9"),
    ),
    (
        "eventlog/go-tpm-tools/ubuntu-2104-no-secure-boot.bin",
        NoRefState("no initrd or initramfs EV_IPL event on PCR 9"),
    ),
    (
        "eventlog/go-tpm-tools/ubuntu-2204-intel-tdx.bin",
        NoRefState("no initrd or initramfs EV_IPL event on PCR 9"),
    ),
    (
        "eventlog/keylime/binary_bios_measurements",
        Rejects("event 1 (PCR 0, EV_NO_ACTION) appears more than once"),
    ),
    ("eventlog/keylime/binary_bios_measurements-bogus", NotALog),
    ("eventlog/keylime/binary_bios_measurements-empty", NotALog),
    (
        "eventlog/keylime/binary_bios_measurements-secureboot",
        Accepts,
    ),
    ("eventlog/keylime/mb_log.bin", Accepts),
    ("eventlog/keylime-tests/mb_log.bin", Accepts),
    ("eventlog/keylime-tests/mb_log_secureboot.bin", Accepts),
    (
        "eventlog/python3-uefi-eventlog/201123-eventlog.bin",
        Rejects(
            "event 2 (PCR 0, EV_POST_CODE) has an unexpected (PCRIndex, EventType) combination",
        ),
    ),
    (
        "eventlog/python3-uefi-eventlog/bootlog-5.0.0-rhel-20210423T133156Z_8b0347a.bin",
        NoRefState("no initrd or initramfs EV_IPL event on PCR 9"),
    ),
    (
        "eventlog/python3-uefi-eventlog/css-flex14vm4-bootlog.bin",
        Accepts,
    ),
    (
        "eventlog/python3-uefi-eventlog/ideapad1.bin",
        NoRefState("expected 3 UEFI applications to be booted (shim, grub, Linux), the log has 1"),
    ),
    (
        "eventlog/python3-uefi-eventlog/inspur.bin",
        Rejects(
            "event 2 (PCR 0, EV_POST_CODE) has an unexpected (PCRIndex, EventType) combination",
        ),
    ),
    (
        "eventlog/python3-uefi-eventlog/puiterwijk.bin",
        Rejects(
            "event 6 (PCR 0, EV_POST_CODE) has an unexpected (PCRIndex, EventType) combination",
        ),
    ),
    (
        "eventlog/python3-uefi-eventlog/rhcos.bin",
        NoRefState("no initrd or initramfs EV_IPL event on PCR 9"),
    ),
    (
        "eventlog/rust-keylime/uefi_log.bin",
        Rejects(
            "event 9 (PCR 7, EV_EFI_VARIABLE_DRIVER_CONFIG) dbx has 5 signature lists, the policy expects exactly one",
        ),
    ),
    (
        "eventlog/tcglog-parser/binary_bios_measurements",
        Rejects(
            "event 1 (PCR 0, EV_S_CRTM_CONTENTS) has an unexpected (PCRIndex, EventType) combination",
        ),
    ),
    (
        "eventlog/tpm2-tools/event-arch-linux.bin",
        NoRefState("no initrd or initramfs EV_IPL event on PCR 9"),
    ),
    ("eventlog/tpm2-tools/event-bootorder.bin", Accepts),
    (
        "eventlog/tpm2-tools/event-sd-boot-fedora37.bin",
        NoRefState("expected 2 UEFI applications to be booted (shim, grub), the log has 0"),
    ),
    (
        "eventlog/tpm2-tools/event-uefi-sha1-log.bin",
        NoRefState("event 0 has no sha256 digest"),
    ),
    (
        "eventlog/tpm2-tools/event-uefiaction.bin",
        NoRefState("no EV_S_CRTM_VERSION event"),
    ),
    (
        "eventlog/tpm2-tools/event-uefiservices.bin",
        NoRefState("no EV_S_CRTM_VERSION event"),
    ),
    (
        "eventlog/tpm2-tools/event-uefivar.bin",
        NoRefState("no EV_S_CRTM_VERSION event"),
    ),
    (
        "eventlog/tpm2-tools/event.bin",
        NoRefState("no EV_S_CRTM_VERSION event"),
    ),
    (
        "eventlog/tpm2-tools/specid-vendordata.bin",
        NoRefState("no EV_S_CRTM_VERSION event"),
    ),
    (
        "eventlog/tpm2-tss/binary_measurements_pc_client.bin",
        NoRefState("no initrd or initramfs EV_IPL event on PCR 9"),
    ),
    (
        "eventlog/tpm2-tss/specid-vendordata.bin",
        NoRefState("no EV_S_CRTM_VERSION event"),
    ),
    (
        "eventlog/u-root/binary_bios_measurements_tpm12_bios",
        NoRefState("event 0 has no sha256 digest"),
    ),
    (
        "eventlog/u-root/binary_bios_measurements_tpm12_efi",
        NoRefState("event 0 has no sha256 digest"),
    ),
    (
        "eventlog/u-root/binary_bios_measurements_tpm20_efi_agile",
        NoRefState("expected 2 UEFI applications to be booted (shim, grub), the log has 1"),
    ),
];

fn upstream_example_refstate() -> Value {
    let text = std::fs::read_to_string(keylime_testkit::testdata(
        "mbpolicy/keylime/example_reference_state.json",
    ))
    .expect("example refstate");
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn every_corpus_log_meets_its_expected_example_outcome() {
    let index: BTreeMap<String, Value> = serde_json::from_str(
        &std::fs::read_to_string(keylime_testkit::testdata("eventlog/INDEX.json")).expect("index"),
    )
    .expect("index JSON");
    let listed: Vec<&str> = CORPUS.iter().map(|(rel, _)| *rel).collect();
    for rel in index.keys() {
        assert!(
            listed.contains(&rel.as_str()),
            "{rel} has no expected outcome"
        );
    }
    let upstream_refstate = upstream_example_refstate();
    let mut accepted = 0;
    for (rel, outcome) in CORPUS {
        let bytes = read(rel);
        let derived = derive(&bytes);
        match outcome {
            NotALog => {
                assert!(
                    matches!(derived, Err(MbPolicyError::EventLog(_))),
                    "{rel}: {derived:?}"
                );
                continue;
            }
            NoRefState(why) => match &derived {
                Err(MbPolicyError::Underivable(msg)) => {
                    assert!(msg.contains(why), "{rel}: {msg}");
                }
                other => panic!("{rel}: expected no reference state, got {other:?}"),
            },
            Accepts | Rejects(_) => {
                let refstate = derived.unwrap_or_else(|e| panic!("{rel}: {e}"));
                let verdict = check_example(&bytes, &refstate);
                assert!(verdict.evaluated, "{rel}: policy not evaluated");
                assert!(
                    !verdict.boot_aggregates.is_empty(),
                    "{rel}: no boot aggregate"
                );
                match outcome {
                    Accepts => {
                        assert_eq!(ids(&verdict), Vec::<String>::new(), "{rel}");
                        accepted += 1;
                    }
                    Rejects(why) => {
                        assert_eq!(ids(&verdict), ["measured_boot.policy_example"], "{rel}");
                        assert!(
                            reason(&verdict).contains(why),
                            "{rel}: {}",
                            reason(&verdict)
                        );
                    }
                    _ => unreachable!(),
                }
            }
        }
        // A reference state not derived from the log never accepts it.
        let verdict = check_example(&bytes, &upstream_refstate);
        assert!(
            !verdict.failures.is_empty(),
            "{rel}: upstream's example reference state accepted"
        );
        let replayed = !replay(&EventLog::parse(&bytes).expect("parse")).is_empty();
        assert_eq!(verdict.evaluated, replayed, "{rel}: {:?}", ids(&verdict));
    }
    assert_eq!(accepted, 6);
}
