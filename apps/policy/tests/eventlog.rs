//! `keylime-policy inspect eventlog` and `create measured-boot` through the binary, checked
//! against the replayed PCRs the shared test data's INDEX.json records.

mod common;

use common::{fails, json, ok, run, stderr, stdout, td, td_str};
use serde_json::Value;

#[test]
fn inspect_matches_the_index_for_every_log() {
    let index = json(&std::fs::read_to_string(td("eventlog/INDEX.json")).expect("index"));
    let mut compared = 0;
    for (rel, want) in index.as_object().expect("index object") {
        let path = td_str(rel);
        if want["algs"].is_null() {
            // not an event log (garbage, or too short)
            fails(&["inspect", "eventlog", &path, "--json"], 1, rel);
            continue;
        }
        let got = json(&ok(&["inspect", "eventlog", &path, "--json"]));
        assert_eq!(
            got["events"].as_array().expect("events").len() as u64,
            want["events"].as_u64().expect("count"),
            "{rel}"
        );
        for (bank, pcrs) in want["replayed_pcrs"].as_object().expect("pcrs") {
            for (pcr, value) in pcrs.as_object().expect("bank") {
                let ours = got["pcrs"][bank][pcr].as_str().unwrap_or_default();
                assert_eq!(
                    ours.trim_start_matches("0x"),
                    value.as_str().expect("hex"),
                    "{rel} {bank} PCR {pcr}"
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 500, "only {compared} PCR values compared");
}

#[test]
fn inspect_text_form() {
    let text = ok(&[
        "inspect",
        "eventlog",
        &td_str("eventlog/keylime-tests/mb_log_secureboot.bin"),
    ]);
    assert!(text.contains("EV_S_CRTM_VERSION"), "{text}");
    assert!(text.contains("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"));
}

fn sha256_of_first(events: &Value, event_type: &str) -> String {
    let e = events
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["EventType"] == event_type)
        .unwrap_or_else(|| panic!("no {event_type}"));
    let d = e["Digests"]
        .as_array()
        .expect("digests")
        .iter()
        .find(|d| d["AlgorithmId"] == "sha256")
        .expect("sha256 digest");
    format!("0x{}", d["Digest"].as_str().expect("hex"))
}

#[test]
fn measured_boot_reference_state_with_secure_boot() {
    let log = td_str("eventlog/keylime-tests/mb_log_secureboot.bin");
    let out = ok(&["create", "measured-boot", "-e", &log]);
    // upstream's key order
    assert!(
        out.starts_with(r#"{"has_secureboot": true, "scrtm_and_bios": ["#),
        "{out}"
    );
    let refstate = json(&out);
    let events = json(&ok(&["inspect", "eventlog", &log, "--json"]))["events"].clone();
    assert_eq!(
        refstate["scrtm_and_bios"][0]["scrtm"]["sha256"],
        sha256_of_first(&events, "EV_S_CRTM_VERSION")
    );
    for key in [
        "pk",
        "kek",
        "db",
        "dbx",
        "vendor_db",
        "mokdig",
        "mokxdig",
        "kernels",
    ] {
        assert!(refstate[key].is_array(), "{key}: {refstate}");
    }
    assert!(!refstate["db"].as_array().expect("db").is_empty());
    // -i is ignored (with a warning) when the log has Secure Boot enabled
    let again = json(&ok(&[
        "create",
        "measured-boot",
        "-e",
        &log,
        "--without-secureboot",
    ]));
    assert_eq!(again, refstate);
}

#[test]
fn measured_boot_without_secure_boot_needs_the_flag() {
    let log = td_str("eventlog/keylime-tests/mb_log.bin");
    fails(
        &["create", "measured-boot", "-e", &log],
        1,
        "--without-secureboot",
    );
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("mb.json");
    let o = run(&[
        "create",
        "measured-boot",
        "-e",
        &log,
        "-i",
        "-o",
        out.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let refstate = json(&std::fs::read_to_string(&out).expect("written"));
    assert_eq!(refstate["has_secureboot"], false);
    assert!(refstate["kernels"][0].is_object(), "{refstate}");
}

#[test]
fn hostile_inputs_fail_cleanly() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = |name: &str, data: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, data).expect("write");
        path.to_str().expect("utf8").to_owned()
    };
    fails(
        &["inspect", "eventlog", "/nonexistent/log"],
        1,
        "/nonexistent/log",
    );
    fails(
        &["create", "measured-boot", "-e", "/nonexistent/log"],
        1,
        "/nonexistent/log",
    );
    fails(&["create", "measured-boot"], 2, "--eventlog-file");
    let bogus = td_str("eventlog/keylime/binary_bios_measurements-bogus");
    fails(
        &["create", "measured-boot", "-e", &bogus, "-i"],
        1,
        "binary_bios_measurements-bogus",
    );
    let truncated = std::fs::read(td("eventlog/keylime-tests/mb_log.bin")).expect("log");
    let cut = p("cut.bin", &truncated[..truncated.len() / 2 + 3]);
    let o = run(&["inspect", "eventlog", &cut, "--json"]);
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    let text = p("text.bin", b"this is not an event log at all, just text\n");
    fails(&["inspect", "eventlog", &text], 1, "text.bin");
    fails(
        &["inspect", "eventlog", dir.path().to_str().expect("utf8")],
        1,
        "directory",
    );
}
