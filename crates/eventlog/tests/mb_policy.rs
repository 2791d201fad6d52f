//! The measured-boot check through the public API: tampered reference states and quotes
//! fail naming what differs, PCRs are compared before any evaluation, data that is not
//! what was measured is not believed, and the built-in accept-all/reject-all policies.

mod common;

use std::collections::BTreeMap;

use common::{check_example, derive, ids, quote_of, read, reason};
use keylime_eventlog::{
    EventLog, HashAlg, MbComponent, MbFailure, MbPolicyError, PreparedMbPolicy, check,
    check_replay_only, refstate_from_log, replay,
};
use serde_json::{Value, json};

fn secure_boot_log() -> (Vec<u8>, Value) {
    let bytes = read("eventlog/keylime-tests/mb_log_secureboot.bin");
    let refstate = refstate_from_log(&bytes, true).expect("refstate");
    (bytes, refstate)
}

/// Change one reference-state entry and return the policy failure's context.
fn tampered(bytes: &[u8], refstate: &Value, pointer: &str, value: Value) -> Value {
    let mut refstate = refstate.clone();
    *refstate
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} in refstate")) = value;
    let verdict = check_example(bytes, &refstate);
    assert_eq!(ids(&verdict), ["measured_boot.policy_example"], "{pointer}");
    let failure = &verdict.failures[0];
    assert!(failure.recoverable);
    assert_eq!(failure.context["context"], "Boot attestation failed");
    assert_eq!(failure.context["policy"], "example");
    failure.context.clone()
}

const OTHER_DIGEST: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";

#[test]
fn tampered_boot_component_is_named() {
    let (bytes, refstate) = secure_boot_log();
    assert_eq!(ids(&check_example(&bytes, &refstate)), Vec::<String>::new());
    for field in [
        "shim_authcode_sha256",
        "grub_authcode_sha256",
        "kernel_authcode_sha256",
        "initrd_plain_sha256",
    ] {
        let ctx = tampered(
            &bytes,
            &refstate,
            &format!("/kernels/0/{field}"),
            json!(OTHER_DIGEST),
        );
        assert_eq!(ctx["component"], format!("kernels[0].{field}"), "{ctx}");
        assert!(ctx["reason"].as_str().unwrap().contains(field), "{ctx}");
        assert!(ctx["event"].is_u64(), "{ctx}");
    }
    let ctx = tampered(
        &bytes,
        &refstate,
        "/kernels/0/kernel_cmdline",
        json!("root=/dev/sda1 ro"),
    );
    assert_eq!(ctx["component"], "kernels[0].kernel_cmdline");
    let ctx = tampered(
        &bytes,
        &refstate,
        "/scrtm_and_bios/0/scrtm",
        json!({ "sha256": OTHER_DIGEST }),
    );
    assert_eq!(ctx["component"], "scrtm_and_bios[0].scrtm");
    let ctx = tampered(
        &bytes,
        &refstate,
        "/scrtm_and_bios/0/platform_firmware/1",
        json!({ "sha256": OTHER_DIGEST }),
    );
    assert_eq!(ctx["component"], "scrtm_and_bios[0].platform_firmware[1]");
    let ctx = tampered(
        &bytes,
        &refstate,
        "/mokdig/0",
        json!({ "sha256": OTHER_DIGEST }),
    );
    assert_eq!(ctx["component"], "mokdig");
    let ctx = tampered(&bytes, &refstate, "/pk/0/SignatureData", json!("0x3082"));
    assert_eq!(ctx["component"], "pk");
    let ctx = tampered(&bytes, &refstate, "/db/1/SignatureOwner", json!("x"));
    assert_eq!(ctx["component"], "db");
    // dbx must hold at least the reference state's entries.
    let mut dbx = refstate["dbx"].as_array().expect("dbx").clone();
    dbx.push(json!({
        "SignatureOwner": "77fa9abd-0359-4d32-bd60-28f4e78f784b",
        "SignatureData": OTHER_DIGEST,
    }));
    let ctx = tampered(&bytes, &refstate, "/dbx", Value::Array(dbx));
    assert_eq!(ctx["component"], "dbx");
    // Without Secure Boot a kernel entry needs vmlinuz_plain_sha256 instead.
    let mut no_sb = refstate.clone();
    no_sb["has_secureboot"] = json!(false);
    let err = PreparedMbPolicy::prepare("example", Some(&no_sb)).expect_err("incomplete");
    assert!(err.to_string().contains("vmlinuz_plain_sha256"), "{err}");
}

#[test]
fn secure_boot_off_checks_vmlinuz() {
    let bytes = read("eventlog/keylime-tests/mb_log.bin");
    let refstate = derive(&bytes).expect("refstate");
    assert_eq!(ids(&check_example(&bytes, &refstate)), Vec::<String>::new());
    let ctx = tampered(
        &bytes,
        &refstate,
        "/kernels/0/vmlinuz_plain_sha256",
        json!(OTHER_DIGEST),
    );
    assert_eq!(ctx["component"], "kernels[0].vmlinuz_plain_sha256");
    // With Secure Boot expected, the SecureBoot variable itself fails.
    let mut sb = refstate.clone();
    sb["has_secureboot"] = json!(true);
    sb["kernels"][0]["kernel_authcode_sha256"] = json!(OTHER_DIGEST);
    let verdict = check_example(&bytes, &sb);
    assert!(reason(&verdict).contains("SecureBoot Enabled is not \"Yes\""));
}

#[test]
fn several_kernels_one_must_match() {
    let (bytes, refstate) = secure_boot_log();
    let mut two = refstate.clone();
    let mut other = refstate["kernels"][0].clone();
    other["shim_authcode_sha256"] = json!(OTHER_DIGEST);
    two["kernels"] = json!([other.clone(), refstate["kernels"][0].clone()]);
    assert_eq!(ids(&check_example(&bytes, &two)), Vec::<String>::new());
    two["kernels"] = json!([other.clone(), other]);
    let verdict = check_example(&bytes, &two);
    assert!(reason(&verdict).starts_with("no kernels entry matches"));
}

#[test]
fn quoted_pcr_differing_from_replay_is_invalid_and_stops_evaluation() {
    let (bytes, refstate) = secure_boot_log();
    // Even with a reference state the policy would reject, no evaluation happens.
    let mut bad = refstate.clone();
    bad["kernels"][0]["shim_authcode_sha256"] = json!(OTHER_DIGEST);
    let policy = PreparedMbPolicy::prepare("example", Some(&bad)).expect("prepare");
    let mut quoted = quote_of(&bytes, HashAlg::Sha256);
    let replayed = quoted[&4].clone();
    quoted.insert(4, vec![0xAB; 32]);
    let verdict = check(&bytes, HashAlg::Sha256, &quoted, &policy);
    assert_eq!(ids(&verdict), ["measured_boot.invalid_pcr_4"]);
    assert!(!verdict.evaluated);
    let ctx = &verdict.failures[0].context;
    assert_eq!(ctx["got"], hex::encode([0xAB; 32]));
    assert_eq!(ctx["expected"], hex::encode(&replayed));
    assert_eq!(
        ctx["context"],
        "SHA256 boot event log PCR value does not match"
    );
    // PCRs outside the policy (10, 16, 23) are not compared.
    let mut quoted = quote_of(&bytes, HashAlg::Sha256);
    quoted.insert(10, vec![0xCD; 32]);
    quoted.insert(16, vec![0xCD; 32]);
    let policy = PreparedMbPolicy::prepare("example", Some(&refstate)).expect("prepare");
    let verdict = check(&bytes, HashAlg::Sha256, &quoted, &policy);
    assert_eq!(ids(&verdict), Vec::<String>::new());
}

#[test]
fn policy_pcrs_missing_from_the_quote() {
    let (bytes, refstate) = secure_boot_log();
    let policy = PreparedMbPolicy::prepare("example", Some(&refstate)).expect("prepare");
    assert_eq!(policy.pcrs(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14]);
    let mut quoted = quote_of(&bytes, HashAlg::Sha256);
    quoted.remove(&14);
    quoted.remove(&9);
    let verdict = check(&bytes, HashAlg::Sha256, &quoted, &policy);
    assert_eq!(ids(&verdict), ["measured_boot.missing_pcrs"]);
    assert_eq!(verdict.failures[0].context["data"], json!([9, 14]));
    assert!(!verdict.evaluated);
}

#[test]
fn replay_only_compares_pcrs_without_evaluating() {
    let (bytes, mut refstate) = secure_boot_log();
    refstate["kernels"][0]["grub_authcode_sha256"] = json!(OTHER_DIGEST);
    let policy = PreparedMbPolicy::prepare("example", Some(&refstate)).expect("prepare");
    let quoted = quote_of(&bytes, HashAlg::Sha256);
    let verdict = check_replay_only(&bytes, HashAlg::Sha256, &quoted, &policy);
    assert_eq!(ids(&verdict), Vec::<String>::new());
    assert!(!verdict.evaluated);
    assert!(!verdict.boot_aggregates.is_empty());
    let verdict = check(&bytes, HashAlg::Sha256, &quoted, &policy);
    assert_eq!(ids(&verdict), ["measured_boot.policy_example"]);
}

#[test]
fn data_that_is_not_what_was_measured_is_not_believed() {
    // Rewrite one character of the kernel command line's data, keeping its digests: the
    // replay (and the quote) are unchanged, but a policy reading the data would be fooled.
    let mut bytes = read("eventlog/keylime-tests/mb_log_secureboot.bin");
    let log = EventLog::parse(&bytes).expect("parse");
    let cmdline = log
        .events
        .iter()
        .find(|e| e.pcr == 8 && e.data.starts_with(b"kernel_cmdline: "))
        .expect("kernel command line event");
    let data_at = cmdline.data_offset;
    let ro = cmdline
        .data
        .windows(4)
        .position(|w| w == b" ro ")
        .expect("' ro ' in the command line");
    bytes[data_at + ro + 1..data_at + ro + 3].copy_from_slice(b"rw");
    let tampered_log = EventLog::parse(&bytes).expect("still parses");
    let bad: Vec<usize> = tampered_log.mismatched_events().map(|e| e.number).collect();
    assert_eq!(bad, [cmdline.number]);
    assert_eq!(replay(&tampered_log), replay(&log));
    // A reference state derived from the tampered log itself does not help.
    let refstate = refstate_from_log(&bytes, true).expect("refstate");
    assert!(
        refstate["kernels"][0]["kernel_cmdline"]
            .as_str()
            .unwrap()
            .contains("\\ rw\\ ")
    );
    let verdict = check_example(&bytes, &refstate);
    let why = reason(&verdict);
    assert!(why.contains("digests that do not match its data"), "{why}");
    assert_eq!(verdict.failures[0].context["event"], json!(cmdline.number));
}

#[test]
fn accept_all_and_reject_all() {
    let (bytes, refstate) = secure_boot_log();
    let quoted = quote_of(&bytes, HashAlg::Sha256);
    let accept = PreparedMbPolicy::prepare("accept-all", Some(&refstate)).expect("prepare");
    assert_eq!(
        accept.pcrs(),
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15]
    );
    let verdict = check(&bytes, HashAlg::Sha256, &quoted, &accept);
    assert_eq!(ids(&verdict), Vec::<String>::new());
    assert!(verdict.evaluated);
    // accept-all still replays every measured-boot PCR: a PCR 11 the log never extended
    // must be zero in the quote.
    let mut extended = quoted.clone();
    extended.insert(11, vec![0x11; 32]);
    let verdict = check(&bytes, HashAlg::Sha256, &extended, &accept);
    assert_eq!(ids(&verdict), ["measured_boot.invalid_pcr_11"]);

    let reject =
        PreparedMbPolicy::prepare("reject-all", Some(&json!({"any": 1}))).expect("prepare");
    let verdict = check(&bytes, HashAlg::Sha256, &quoted, &reject);
    assert_eq!(ids(&verdict), ["measured_boot.policy_reject-all"]);
    assert_eq!(verdict.failures[0].context["reason"], "reject all");
    assert_eq!(verdict.failures[0].context["refstate"], r#"{"any":1}"#);
}

#[test]
fn no_reference_state_means_nothing_is_evaluated() {
    let (bytes, _) = secure_boot_log();
    let mut quoted = quote_of(&bytes, HashAlg::Sha256);
    quoted.insert(0, vec![0xEE; 32]);
    for refstate in [None, Some(json!({})), Some(json!(null)), Some(json!(""))] {
        for name in ["example", "accept-all", "reject-all"] {
            let policy = PreparedMbPolicy::prepare(name, refstate.as_ref()).expect("prepare");
            assert!(policy.is_empty());
            assert!(policy.pcrs().is_empty());
            let verdict = check(&bytes, HashAlg::Sha256, &quoted, &policy);
            assert_eq!(ids(&verdict), Vec::<String>::new(), "{name} {refstate:?}");
            // The boot aggregates are computed anyway, for the IMA check.
            assert_eq!(verdict.boot_aggregates.len(), 2);
        }
    }
}

#[test]
fn boot_aggregates_cover_pcrs_0_to_7_and_0_to_9() {
    let bytes = read("eventlog/python3-uefi-eventlog/css-flex14vm4-bootlog.bin");
    let policy = PreparedMbPolicy::prepare("accept-all", None).expect("prepare");
    let verdict = check(&bytes, HashAlg::Sha256, &BTreeMap::new(), &policy);
    let banks = replay(&EventLog::parse(&bytes).expect("parse"));
    let mut want = Vec::new();
    for alg in [HashAlg::Sha1, HashAlg::Sha256] {
        for n in [8u32, 10] {
            let parts: Vec<&[u8]> = (0..n).map(|i| banks[&alg][&i].as_slice()).collect();
            want.push((alg, alg.digest_parts(&parts)));
        }
    }
    assert_eq!(verdict.boot_aggregates, want);
    // A log that never extends PCR 8/9 only has the 0–7 aggregate.
    let bytes = read("eventlog/go-tpm-tools/glinux-alex.bin");
    let verdict = check(&bytes, HashAlg::Sha256, &BTreeMap::new(), &policy);
    assert_eq!(
        verdict.boot_aggregates.len(),
        2,
        "sha1 and sha256, 0–7 only"
    );
}

#[test]
fn unusable_logs_are_parser_failures() {
    let (bytes, refstate) = secure_boot_log();
    let policy = PreparedMbPolicy::prepare("example", Some(&refstate)).expect("prepare");
    let quoted = quote_of(&bytes, HashAlg::Sha256);
    let verdict = check(
        b"not an event log at all",
        HashAlg::Sha256,
        &quoted,
        &policy,
    );
    assert_eq!(ids(&verdict), ["measured_boot.parser.tpm2_eventlog.error"]);
    assert!(verdict.boot_aggregates.is_empty());
    let verdict = check(&bytes[..bytes.len() - 3], HashAlg::Sha256, &quoted, &policy);
    assert_eq!(ids(&verdict), ["measured_boot.parser.tpm2_eventlog.error"]);
    // The log has no SHA-1 bank.
    let verdict = check(&bytes, HashAlg::Sha1, &quoted, &policy);
    assert_eq!(ids(&verdict), ["measured_boot.parser.invalid_pcrs_hashes"]);
    // No log at all but a reference state: the policy PCRs are unused and missing.
    let verdict = check(&[], HashAlg::Sha256, &quoted, &policy);
    let mut want: Vec<String> = policy
        .pcrs()
        .iter()
        .map(|p| format!("pcr_validation.unused_pcr_{p}"))
        .collect();
    want.push("measured_boot.missing_pcrs".into());
    assert_eq!(ids(&verdict), want);
    assert_eq!(verdict.failures[0].component, MbComponent::PcrValidation);
    let reject = PreparedMbPolicy::prepare("reject-all", Some(&refstate)).expect("prepare");
    let verdict = check(&[], HashAlg::Sha256, &BTreeMap::new(), &reject);
    assert_eq!(ids(&verdict), ["measured_boot.policy_reject-all"]);
}

#[test]
fn refstate_from_log_follows_the_secure_boot_flag() {
    let sb = read("eventlog/keylime/binary_bios_measurements-secureboot");
    let no_sb = read("eventlog/keylime/binary_bios_measurements");
    assert_eq!(
        refstate_from_log(&no_sb, true),
        Err(MbPolicyError::SecureBootDisabled)
    );
    let refstate = refstate_from_log(&no_sb, false).expect("without secure boot");
    assert_eq!(refstate["has_secureboot"], json!(false));
    assert!(refstate["kernels"][0].get("vmlinuz_plain_sha256").is_some());
    assert!(
        refstate["kernels"][0]
            .get("kernel_authcode_sha256")
            .is_none()
    );
    // --without-secureboot on a Secure Boot log is ignored.
    assert_eq!(
        refstate_from_log(&sb, false).expect("ignored flag"),
        refstate_from_log(&sb, true).expect("secure boot")
    );
    let refstate = refstate_from_log(&sb, true).expect("secure boot");
    assert_eq!(refstate["has_secureboot"], json!(true));
    for key in [
        "scrtm_and_bios",
        "pk",
        "kek",
        "db",
        "dbx",
        "vendor_db",
        "mokdig",
        "mokxdig",
        "kernels",
    ] {
        assert!(refstate[key].is_array(), "{key}");
    }
    assert!(
        refstate["pk"][0]["SignatureData"]
            .as_str()
            .unwrap()
            .starts_with("0x3082")
    );
    // Both logs are rejected as logs, not as policies.
    assert!(matches!(
        refstate_from_log(
            &read("eventlog/keylime/binary_bios_measurements-bogus"),
            true
        ),
        Err(MbPolicyError::EventLog(_))
    ));
}

#[test]
fn unusable_policy_failure_matches_upstream() {
    let refstate = json!({"kernels": "nope"});
    let err = PreparedMbPolicy::prepare("example", Some(&refstate)).expect_err("invalid");
    let failure = MbFailure::unusable_policy("example", Some(&refstate), &err);
    assert_eq!(failure.event_id(), "measured_boot.policy_example");
    assert!(
        failure.context["reason"]
            .as_str()
            .unwrap()
            .starts_with("policy evaluation failed: invalid reference state: refstate['kernels']")
    );
}
