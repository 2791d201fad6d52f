//! Hostile and malformed reference states: wrong types, bad hex, unsupported regular
//! expressions and oversized lists give an `MbPolicyError` naming where, never a panic.

use keylime_eventlog::{MbPolicyError, PreparedMbPolicy, refstate_from_log};
use serde_json::{Value, json};

fn valid() -> Value {
    let bytes = std::fs::read(keylime_testkit::testdata(
        "eventlog/keylime-tests/mb_log_secureboot.bin",
    ))
    .expect("read log");
    refstate_from_log(&bytes, true).expect("refstate")
}

fn prepare(refstate: &Value) -> Result<PreparedMbPolicy, MbPolicyError> {
    PreparedMbPolicy::prepare("example", Some(refstate))
}

fn error_of(refstate: &Value) -> String {
    match prepare(refstate) {
        Ok(_) => panic!("accepted {refstate}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn upstream_example_reference_state_compiles() {
    let text = std::fs::read_to_string(keylime_testkit::testdata(
        "mbpolicy/keylime/example_reference_state.json",
    ))
    .expect("read");
    let refstate: Value = serde_json::from_str(&text).expect("JSON");
    let policy = prepare(&refstate).expect("compiles");
    assert!(!policy.is_empty());
    assert!(prepare(&valid()).is_ok());
}

#[test]
fn unknown_policy_name_is_an_error() {
    assert_eq!(
        PreparedMbPolicy::prepare("lenient", Some(&valid())).err(),
        Some(MbPolicyError::UnknownPolicy("lenient".into()))
    );
    // Even without a reference state: the name is configuration.
    assert!(PreparedMbPolicy::prepare("", None).is_err());
}

#[test]
fn wrong_types_name_the_field() {
    let cases: &[(&str, Value, &str)] = &[
        (
            "",
            json!([1, 2]),
            "refstate is a list rather than an object",
        ),
        (
            "",
            json!("text"),
            "refstate is a string rather than an object",
        ),
        (
            "/kernels",
            json!({}),
            "refstate['kernels'] is an object rather than a list",
        ),
        ("/kernels/0", json!(7), "refstate['kernels'][0] is a number"),
        (
            "/kernels/0/shim_authcode_sha256",
            json!("0xABCD"),
            "lowercase hex",
        ),
        (
            "/kernels/0/grub_authcode_sha256",
            json!("abcd"),
            "not 0x followed",
        ),
        (
            "/kernels/0/initrd_plain_sha256",
            json!("0x"),
            "not 0x followed",
        ),
        (
            "/kernels/0/kernel_authcode_sha256",
            json!(null),
            "rather than a 0x-hex string",
        ),
        (
            "/kernels/0/kernel_cmdline",
            json!(["x"]),
            "kernel_cmdline\"] is a list",
        ),
        (
            "/scrtm_and_bios",
            json!("x"),
            "scrtm_and_bios'] is a string",
        ),
        ("/scrtm_and_bios/0/scrtm", json!([]), "['scrtm'] is a list"),
        (
            "/scrtm_and_bios/0/scrtm",
            json!({"sha256": 5}),
            "[\"sha256\"] is a number",
        ),
        (
            "/scrtm_and_bios/0/platform_firmware",
            json!({}),
            "is an object rather than a list",
        ),
        ("/pk", json!(null), "refstate['pk'] is null"),
        ("/pk", json!(5), "refstate['pk'] is a number"),
        (
            "/pk/0",
            json!({"SignatureOwner": "x"}),
            "lacks field \"SignatureData\"",
        ),
        (
            "/db/0/SignatureData",
            json!("3082"),
            "does not start with 0x",
        ),
        ("/dbx/0/SignatureOwner", json!(1), "must be strings"),
        ("/mokdig", json!([{"sha256": "0xZZ"}]), "lowercase hex"),
        ("/mokxdig", json!("0x00"), "is a string rather than a list"),
    ];
    for (pointer, value, want) in cases {
        let mut refstate = valid();
        *refstate.pointer_mut(pointer).expect(pointer) = value.clone();
        let err = error_of(&refstate);
        assert!(err.contains(want), "{pointer}: {err}");
    }
}

#[test]
fn required_keys_are_required() {
    for key in [
        "kernels",
        "scrtm_and_bios",
        "pk",
        "kek",
        "db",
        "dbx",
        "mokdig",
        "mokxdig",
    ] {
        let mut refstate = valid();
        refstate.as_object_mut().expect("object").remove(key);
        let err = error_of(&refstate);
        assert!(err.contains(key), "{key}: {err}");
    }
    // vendor_db is optional.
    let mut refstate = valid();
    refstate
        .as_object_mut()
        .expect("object")
        .remove("vendor_db");
    assert!(prepare(&refstate).is_ok());
    for field in [
        "shim_authcode_sha256",
        "grub_authcode_sha256",
        "kernel_authcode_sha256",
        "initrd_plain_sha256",
        "kernel_cmdline",
    ] {
        let mut refstate = valid();
        refstate["kernels"][0]
            .as_object_mut()
            .expect("kernel")
            .remove(field);
        let err = error_of(&refstate);
        assert!(err.contains(field), "{field}: {err}");
    }
}

#[test]
fn secure_boot_off_relaxes_empty_key_lists() {
    let mut refstate = valid();
    refstate["has_secureboot"] = json!(false);
    refstate["kernels"][0]["vmlinuz_plain_sha256"] = json!("0x00");
    refstate["pk"] = json!(null);
    refstate["kek"] = json!([]);
    assert!(prepare(&refstate).is_ok());
    // With Secure Boot on (any truthy value, as in Python), null keys are an error.
    refstate["has_secureboot"] = json!("false");
    refstate["kernels"][0]["kernel_authcode_sha256"] = json!("0x00");
    assert!(error_of(&refstate).contains("refstate['pk'] is null"));
}

#[test]
fn unsupported_regular_expressions_are_errors() {
    for (pattern, want) in [
        ("(?=root)root=.*", "look-around"),
        (r"(a)\1", "backreferences"),
        ("(unclosed", "unclosed group"),
        ("trailing\\", "lone backslash"),
    ] {
        let mut refstate = valid();
        refstate["kernels"][0]["kernel_cmdline"] = json!(pattern);
        match prepare(&refstate) {
            Err(MbPolicyError::BadRegex { at, reason, .. }) => {
                assert_eq!(at, "refstate['kernels'][0][\"kernel_cmdline\"]");
                assert!(reason.to_lowercase().contains(want), "{pattern}: {reason}");
            }
            other => panic!("{pattern}: {other:?}"),
        }
    }
}

#[test]
fn oversized_reference_states_are_refused() {
    let mut refstate = valid();
    refstate["kernels"][0]["kernel_cmdline"] = json!("a".repeat(1 << 20));
    assert!(matches!(
        prepare(&refstate),
        Err(MbPolicyError::BadRegex { .. })
    ));
    let mut refstate = valid();
    let kernel = refstate["kernels"][0].clone();
    refstate["kernels"] = Value::Array(vec![kernel; 5000]);
    assert!(matches!(
        prepare(&refstate),
        Err(MbPolicyError::TooLarge { count: 5000, .. })
    ));
    let mut refstate = valid();
    let key = refstate["dbx"][0].clone();
    refstate["dbx"] = Value::Array(vec![key; 100_001]);
    match prepare(&refstate) {
        Err(MbPolicyError::TooLarge { at, count, .. }) => {
            assert_eq!((at.as_str(), count), ("refstate['dbx']", 100_001));
        }
        other => panic!("{other:?}"),
    }
}

/// Replace every node of a valid reference state, one at a time, with hostile values:
/// preparing must return (Ok or Err), never panic.
#[test]
fn every_node_replaced_by_hostile_values_never_panics() {
    fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    pointers(v, format!("{at}/{k}"), out);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate().take(3) {
                    pointers(v, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
        out.push(at);
    }
    let base = valid();
    let mut all = Vec::new();
    pointers(&base, String::new(), &mut all);
    let hostile = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1.5e300),
        json!(""),
        json!("0x"),
        json!("\u{0}\u{ffff}"),
        json!([]),
        json!([null]),
        json!({}),
        json!({"sha256": []}),
    ];
    let mut errors = 0;
    for pointer in &all {
        for h in &hostile {
            let mut refstate = base.clone();
            match refstate.pointer_mut(pointer) {
                Some(slot) => *slot = h.clone(),
                None => refstate = h.clone(),
            }
            if prepare(&refstate).is_err() {
                errors += 1;
            }
        }
    }
    assert!(all.len() > 20, "{} nodes", all.len());
    assert!(errors > all.len(), "only {errors} errors");
}
