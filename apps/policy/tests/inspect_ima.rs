//! `keylime-policy inspect ima` through the binary, checked against the replayed PCR values
//! the shared test data's INDEX.json records and against an independent computation.

mod common;

use common::{fails, json, ok, run, stderr, td, td_str};
use serde_json::Value;
use sha2::Digest as _;

fn inspect(rel_or_path: &str) -> Value {
    json(&ok(&["inspect", "ima", rel_or_path, "--json"]))
}

#[test]
fn every_testdata_list_matches_the_index() {
    let index = json(&std::fs::read_to_string(td("ima/INDEX.json")).expect("index"));
    let mut checked = 0;
    for (rel, want) in index.as_object().expect("index object") {
        let path = td_str(rel);
        // the INDEX marks lists it could not parse: an unchecked line, or a record cut short
        let unparseable = want["template_hash_check"]["unchecked"].as_u64() == Some(1)
            || want["trailing_bytes"].as_i64() == Some(-1);
        if unparseable {
            fails(&["inspect", "ima", &path, "--json"], 1, rel);
            continue;
        }
        let got = inspect(&path);
        assert_eq!(got["entries"], want["entries"], "{rel}");
        assert_eq!(got["templates"], want["templates"], "{rel}");
        assert_eq!(
            got["mismatches"].as_array().expect("mismatches").len() as u64,
            want["template_hash_check"]["mismatch"]
                .as_u64()
                .expect("count"),
            "{rel}"
        );
        if let Some(t) = want["trailing_bytes"].as_i64().filter(|&t| t > 0) {
            assert_eq!(got["trailing_bytes"], t, "{rel}");
        }
        // INDEX aggregates the logged template hashes; for SHA-1 template hashes that
        // verify, that is our sha1 bank
        if want["template_hash_len"] == 20 {
            assert_eq!(got["pcrs"]["sha1"], want["pcr_sha1_aggregate"], "{rel}");
            checked += 1;
        }
        for (bank, len) in [
            ("sha1", 40),
            ("sha256", 64),
            ("sha384", 96),
            ("sha512", 128),
        ] {
            let values = got["pcrs"][bank].as_object().expect("bank");
            assert_eq!(
                values.len(),
                want["pcr_sha1_aggregate"].as_object().expect("pcrs").len()
            );
            assert!(
                values
                    .values()
                    .all(|v| v.as_str().expect("hex").len() == len),
                "{rel}"
            );
        }
    }
    assert!(checked >= 14, "only {checked} lists compared");
}

/// ima-ng template data: `len ‖ "alg:\0" ‖ digest`, `len ‖ name\0`.
fn ima_ng_template_data(alg: &str, digest: &[u8], name: &str) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&((alg.len() + 2 + digest.len()) as u32).to_le_bytes());
    d.extend_from_slice(alg.as_bytes());
    d.extend_from_slice(b":\0");
    d.extend_from_slice(digest);
    d.extend_from_slice(&((name.len() + 1) as u32).to_le_bytes());
    d.extend_from_slice(name.as_bytes());
    d.push(0);
    d
}

#[test]
fn extended_banks_match_an_independent_replay() {
    let rel = "ima/rust-keylime/ima_log.txt";
    let line = std::fs::read_to_string(td(rel)).expect("list");
    let f: Vec<&str> = line.trim_end().split(' ').collect();
    let (alg, hexd) = f[3].split_once(':').expect("alg:hex");
    let data = ima_ng_template_data(alg, &hex::decode(hexd).expect("hex"), f[4]);
    assert_eq!(
        hex::encode(sha1::Sha1::digest(&data)),
        f[1],
        "template hash"
    );
    let m256 = sha2::Sha256::digest(&data);
    let mut pcr = sha2::Sha256::new();
    pcr.update([0u8; 32]);
    pcr.update(m256);
    let m512 = sha2::Sha512::digest(&data);
    let mut pcr512 = sha2::Sha512::new();
    pcr512.update([0u8; 64]);
    pcr512.update(m512);
    let got = inspect(&td_str(rel));
    assert_eq!(got["pcrs"]["sha256"]["10"], hex::encode(pcr.finalize()));
    assert_eq!(got["pcrs"]["sha512"]["10"], hex::encode(pcr512.finalize()));
    assert_eq!(got["format"], "ascii");
    assert_eq!(got["template_hash_alg"], "sha1");
}

#[test]
fn mismatches_are_reported_with_their_line() {
    let got = inspect(&td_str("ima/keylime-create-runtime-policy/ima-log-sm3_256"));
    let m = &got["mismatches"][0];
    assert_eq!(m["entry"], 2);
    assert_eq!(m["line"], 2);
    assert_eq!(m["name"], "/data");
    assert_eq!(
        m["logged"],
        "7dd89e5149a560cd78cd8d6a5e2227fb7b1a48a01a66f431bfa71da36f3cb169"
    );
    assert_eq!(got["violations"], 1);
    let text = ok(&[
        "inspect",
        "ima",
        &td_str("ima/keylime-create-runtime-policy/ima-log-sm3_256"),
    ]);
    assert!(
        text.contains("template-hash mismatches (sha256): 1"),
        "{text}"
    );
    assert!(text.contains("/data"), "{text}");
}

#[test]
fn text_report_and_binary_lists() {
    let text = ok(&[
        "inspect",
        "ima",
        &td_str("ima/rust-keylime/ascii_runtime_measurements"),
    ]);
    assert!(text.contains("entries: 826"), "{text}");
    assert!(text.contains("PCR 10:"), "{text}");
    assert!(
        text.contains("82231c67a69da98dc5b3aa10f6343d33109225fc"),
        "{text}"
    );
    let bin = inspect(&td_str("ima/tpm2-tss/sml-ima-sig-sha256.bin"));
    assert_eq!(bin["format"], "binary");
    assert_eq!(bin["trailing_bytes"], 6);
    let empty = inspect(&td_str("ima/rust-keylime/empty_ima_log.txt"));
    assert_eq!(empty["entries"], 0);
    assert_eq!(empty["pcrs"]["sha1"], serde_json::json!({}));
    assert_eq!(empty["template_hash_alg"], Value::Null);
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
        &["inspect", "ima", "/nonexistent/list"],
        1,
        "/nonexistent/list",
    );
    fails(
        &["inspect", "ima", &p("latin1", b"10 abc \xe9\xff\n")],
        1,
        "neither",
    );
    // a binary header claiming a huge template name
    let mut bogus = 10u32.to_le_bytes().to_vec();
    bogus.extend_from_slice(&[0u8; 20]);
    bogus.extend_from_slice(&u32::MAX.to_le_bytes());
    bogus.extend_from_slice(&[0u8; 16]);
    fails(
        &["inspect", "ima", &p("bogus.bin", &bogus), "--json"],
        1,
        "record 1",
    );
    let mut random = Vec::new();
    let mut x: u32 = 0x1234_5678;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        random.push((x & 0xff) as u8);
    }
    random[5] = 0;
    let o = run(&["inspect", "ima", &p("random.bin", &random)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
    fails(
        &["inspect", "ima", &p("bad.txt", b"10 00 nonsense x y\n")],
        1,
        "line 1",
    );
    fails(&["inspect", "ima"], 2, "FILE");
}
