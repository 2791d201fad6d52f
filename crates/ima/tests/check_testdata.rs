//! The check against the shared corpus: every ASCII list passes against a policy built from
//! its own entries (quoted with the value its own column 2 replays to, from INDEX.json where
//! recorded), the known-bad samples fail in the chain pass with no policy event, and
//! upstream's signature and keyring vectors give upstream's verdicts.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::{hexs, ids, input, prepare};
use keylime_ima::policy::{DEFAULT_MAX_POLICY_LEN, PolicyDocument, RuntimePolicy, from_legacy};
use keylime_ima::{HashAlg, ImaState, PreparedRuntimePolicy, Replay, Template, check, parse_log};
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
    p.strip_prefix(testdata(""))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// A policy accepting exactly the entries of `text` (keys go to `keyrings`).
fn policy_from_log(text: &str, log_hash_alg: &str) -> RuntimePolicy {
    let mut p = RuntimePolicy::empty();
    p.meta.generator = 3;
    p.ima.log_hash_alg = log_hash_alg.into();
    for e in parse_log(text) {
        let e = e.unwrap();
        if e.is_violation() {
            continue;
        }
        let d = e.digest.digest.to_hex();
        let section = match e.template {
            Template::ImaBuf => {
                let key = keylime_ima::file_signature::PublicKey::from_key_material(&e.buffer());
                if key.is_ok() {
                    &mut p.keyrings
                } else {
                    &mut p.ima_buf
                }
            }
            _ => &mut p.digests,
        };
        let list = section.entry(e.name.to_owned()).or_default();
        if !list.contains(&d) {
            list.push(d);
        }
    }
    p
}

/// Column-2 replay of `text` in a bank of the column's size (what the kernel extends into
/// the SHA-1 bank when H_log is sha1).
fn column2_replay(text: &str, bank: HashAlg) -> Vec<u8> {
    let mut r = Replay::new(bank).unwrap();
    for e in parse_log(text) {
        let e = e.unwrap();
        if e.is_violation() {
            r.extend_measurement(&vec![0xff; bank.digest_len()]);
        } else {
            r.extend_measurement(e.template_hash.as_slice());
        }
    }
    r.value().as_slice().to_vec()
}

const BROKEN: &[(&str, &str)] = &[
    // template hashes that do not cover the fields
    (
        "ima/keylime-create-runtime-policy/ima-log-sm3_256",
        "validation.ima_hash",
    ),
    (
        "ima/keylime-create-runtime-policy/ima-log-unknown",
        "validation.ima_hash",
    ),
    (
        "ima/keylime-unit-tests/ima_verification/bad_signatures.txt",
        "validation.ima_hash",
    ),
    ("ima/rust-keylime/invalid_ima_log.txt", "parser.entry"),
];

#[test]
fn every_list_passes_against_a_policy_built_from_itself() {
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(testdata("ima/INDEX.json")).unwrap())
            .unwrap();
    let mut logs = Vec::new();
    ascii_logs(&testdata("ima"), &mut logs);
    assert!(logs.len() >= 17, "{logs:?}");
    let mut passed = 0;
    for p in logs {
        let name = rel(&p);
        let text = std::fs::read_to_string(&p).unwrap();
        if let Some((_, want)) = BROKEN.iter().find(|(n, _)| *n == name) {
            let policy = prepare(&RuntimePolicy::empty());
            let v = check(
                &input(&text, 0, HashAlg::Sha1, &[0; 20], Some(&policy)),
                &ImaState::default(),
            );
            assert!(ids(&v).contains(want), "{name}: {:?}", v.failures);
            assert_eq!(
                v.evaluated_entries, 0,
                "{name}: chain failures stop evaluation"
            );
            assert!(
                v.failures
                    .iter()
                    .all(|f| !f.id.starts_with("validation.ima-ng")),
                "{name}: {:?}",
                v.failures
            );
            continue;
        }
        let th_len = parse_log(&text)
            .next()
            .map_or(20, |e| e.unwrap().template_hash.len());
        let (log_alg, col2_bank) = if th_len == 32 {
            ("sha256", HashAlg::Sha256)
        } else {
            ("sha1", HashAlg::Sha1)
        };
        let policy = prepare(&policy_from_log(&text, log_alg));
        let quoted = column2_replay(&text, col2_bank);
        if let Some(want) = index[&name]["pcr_sha1_aggregate"]["10"].as_str() {
            assert_eq!(hexs(&quoted), want, "{name}: INDEX.json PCR 10");
        }
        let v = check(
            &input(&text, 0, col2_bank, &quoted, Some(&policy)),
            &ImaState::default(),
        );
        assert!(v.passed(), "{name}: {:?}", v.failures);
        let n = text.lines().filter(|l| !l.is_empty()).count() as u64;
        assert_eq!(v.chain_entries, n, "{name}");
        assert_eq!(v.next_state.next_entry, n, "{name}");
        assert_eq!(
            v.next_state.pcr10.as_deref(),
            Some(hexs(&quoted).as_str()),
            "{name}"
        );
        let violations = parse_log(&text)
            .filter(|e| e.as_ref().unwrap().is_violation())
            .count();
        assert_eq!(v.evaluated_entries, n - violations as u64, "{name}");

        // the same list against the empty policy names its first unlisted file
        if n > violations as u64 {
            let empty = prepare(&RuntimePolicy::empty());
            let v = check(
                &input(&text, 0, col2_bank, &quoted, Some(&empty)),
                &ImaState::default(),
            );
            assert!(!v.passed(), "{name}");
            assert_eq!(
                v.next_state,
                ImaState::default(),
                "{name}: reset on failure"
            );
            let first = &v.failures[0];
            assert!(
                first.id == "validation.ima-ng.not_in_allowlist" || first.id == "invalid_key",
                "{name}: {first:?}"
            );
        }
        passed += 1;
    }
    assert!(passed >= 13, "{passed}");
}

#[test]
fn the_ima_buf_sample_teaches_its_keyring_keys() {
    let text = std::fs::read_to_string(testdata(
        "ima/keylime-tests/ascii_runtime_measurements-ima-buf",
    ))
    .unwrap();
    let policy = prepare(&policy_from_log(&text, "sha1"));
    let quoted = column2_replay(&text, HashAlg::Sha1);
    let v = check(
        &input(&text, 0, HashAlg::Sha1, &quoted, Some(&policy)),
        &ImaState::default(),
    );
    assert!(v.passed(), "{:?}", v.failures);
    let rings: Vec<&str> = v
        .next_state
        .learned_keys
        .iter()
        .map(|k| k.keyring.as_str())
        .collect();
    // the same certificate is measured into .builtin_trusted_keys and .ima: both learned
    assert_eq!(
        rings
            .iter()
            .filter(|r| **r == ".builtin_trusted_keys")
            .count(),
        3,
        "{rings:?}"
    );
    assert_eq!(
        rings.iter().filter(|r| **r == ".ima").count(),
        1,
        "{rings:?}"
    );

    // an ignored keyring teaches nothing and needs no keyrings entry
    let mut p = policy_from_log(&text, "sha1");
    p.keyrings.clear();
    p.ima.ignored_keyrings = vec!["*".into()];
    let policy = prepare(&p);
    let v = check(
        &input(&text, 0, HashAlg::Sha1, &quoted, Some(&policy)),
        &ImaState::default(),
    );
    assert!(v.passed(), "{:?}", v.failures);
    assert!(v.next_state.learned_keys.is_empty());

    // a key whose digest the policy does not list fails and is not learned
    let mut p = policy_from_log(&text, "sha1");
    p.keyrings.remove(".ima");
    p.ima.ignored_keyrings = vec![".builtin_trusted_keys".into()];
    let policy = prepare(&p);
    let v = check(
        &input(&text, 0, HashAlg::Sha1, &quoted, Some(&policy)),
        &ImaState::default(),
    );
    assert_eq!(ids(&v), vec!["validation.ima-ng.not_in_allowlist"]);
    assert_eq!(
        v.failures[0].message(),
        Some("File not found in allowlist: .ima")
    );
}

// ---- upstream's test_ima_verification vectors ----

const VERIFICATION: &str = "ima/keylime-unit-tests/ima_verification";

fn read(rel: &str) -> String {
    std::fs::read_to_string(testdata(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn pem_spki_b64(rel: &str) -> String {
    let text = read(rel);
    text.lines().filter(|l| !l.starts_with("-----")).collect()
}

/// The keyring of upstream's tests: both keys, or only the RSA one.
fn keyring(with_ec: bool) -> String {
    let rsa = pem_spki_b64("keys/ima/keylime/rsa2048pub.pem");
    let mut keys = vec![rsa];
    if with_ec {
        // secp256k1.pem is a private key (SEC1 PEM); the keyring carries its public key,
        // which upstream's IMA_KEYRING_STRING lists second
        let ring = read(&format!("{VERIFICATION}/ima_keyring_string.json"));
        let v: serde_json::Value = serde_json::from_str(&ring).unwrap();
        keys.push(v["pubkeys"][1].as_str().unwrap().to_owned());
    }
    serde_json::json!({"keyids": [], "pubkeys": keys}).to_string()
}

fn policy_with_keys(base: Option<&str>, keys: Option<String>) -> PreparedRuntimePolicy {
    let mut p = match base {
        Some(rel) => {
            RuntimePolicy::from_json_lenient(read(rel).as_bytes(), DEFAULT_MAX_POLICY_LEN).unwrap()
        }
        None => RuntimePolicy::empty(),
    };
    if let Some(k) = keys {
        p.verification_keys = k;
    }
    prepare(&p)
}

fn run(log: &str, policy: &PreparedRuntimePolicy) -> keylime_ima::ImaVerdict {
    let quoted = column2_replay(log, HashAlg::Sha1);
    check(
        &input(log, 0, HashAlg::Sha1, &quoted, Some(policy)),
        &ImaState::default(),
    )
}

#[test]
fn upstream_signature_vectors() {
    let measurements = read(&format!("{VERIFICATION}/measurements.txt"));
    let signatures = read(&format!("{VERIFICATION}/signatures.txt"));
    let bad = read(&format!("{VERIFICATION}/bad_signatures.txt"));
    let lines: Vec<&str> = signatures.lines().collect();
    let test_policy = "policy/keylime-unit-tests/runtime_policy_test.json";

    // measurements against their policy pass; against the empty policy they fail
    assert!(run(&measurements, &policy_with_keys(Some(test_policy), None)).passed());
    assert!(!run(&measurements, &policy_with_keys(None, None)).passed());

    // signatures verified by the keyring accept files the policy does not list
    let rsa_only = policy_with_keys(None, Some(keyring(false)));
    let both = policy_with_keys(None, Some(keyring(true)));
    let dd = format!("{}\n", lines[0]);
    let zmore = format!("{}\n", lines[1]);
    assert!(run(&dd, &rsa_only).passed());
    let v = run(&zmore, &rsa_only);
    assert_eq!(ids(&v), vec!["validation.ima-ng.not_in_allowlist"]);
    assert_eq!(
        v.failures[0].message(),
        Some("File not found in allowlist: /usr/bin/zmore")
    );
    assert!(run(&signatures, &both).passed());
    // without keys the signatures do not help
    assert!(!run(&signatures, &policy_with_keys(None, None)).passed());

    // a valid signature wins over a wrong digest; the digest alone is enough too
    let wrong = "policy/keylime-unit-tests/runtime_policy_wrong.json";
    assert!(
        run(
            &signatures,
            &policy_with_keys(Some(wrong), Some(keyring(true)))
        )
        .passed()
    );
    let v = run(&signatures, &policy_with_keys(Some(wrong), None));
    assert_eq!(
        ids(&v),
        vec![
            "validation.ima-ng.runtime_policy_hash",
            "validation.ima-ng.runtime_policy_hash"
        ]
    );
    assert!(run(&signatures, &policy_with_keys(Some(test_policy), None)).passed());
    let both_logs = format!("{measurements}{signatures}");
    assert!(
        run(
            &both_logs,
            &policy_with_keys(Some(test_policy), Some(keyring(true)))
        )
        .passed()
    );

    // excludes
    let wrong_ex = "policy/keylime-unit-tests/runtime_policy_wrong_with_excludes.json";
    assert!(run(&measurements, &policy_with_keys(Some(wrong_ex), None)).passed());
    let with_ex = "policy/keylime-unit-tests/runtime_policy_with_excludes.json";
    assert!(
        run(
            &signatures,
            &policy_with_keys(Some(with_ex), Some(keyring(true)))
        )
        .passed()
    );

    // a malformed signature never passes, even when excluded or listed
    for pol in [with_ex, test_policy] {
        let v = run(&bad, &policy_with_keys(Some(pol), None));
        assert!(
            ids(&v).contains(&"validation.ima_hash"),
            "{pol}: {:?}",
            v.failures
        );
        assert_eq!(v.evaluated_entries, 0);
    }
}

#[test]
fn upstream_keyring_vector_learns_the_ima_key() {
    let log = read(&format!("{VERIFICATION}/keyrings.txt"));
    let policy = policy_with_keys(
        Some("policy/keylime-unit-tests/runtime_policy_test.json"),
        None,
    );
    let v = run(&log, &policy);
    assert!(v.passed(), "{:?}", v.failures);
    let k = &v.next_state.learned_keys;
    assert_eq!(k.len(), 1);
    assert_eq!((k[0].keyring.as_str(), k[0].keyid), (".ima", 0x2cb6058c));
    let der = base64::engine::general_purpose::STANDARD
        .decode(&k[0].pubkey)
        .unwrap();
    assert_eq!(
        keylime_ima::file_signature::PublicKey::from_spki_der(&der)
            .unwrap()
            .kind(),
        "p256"
    );
}

#[test]
fn upstream_keyring_strings_load_or_are_rejected() {
    let ok = read(&format!("{VERIFICATION}/ima_keyring_string.json"));
    let p = policy_with_keys(None, Some(ok.trim().to_owned()));
    let ids: Vec<u32> = p.verification_keys().iter().map(|k| k.keyid()).collect();
    assert_eq!(ids, vec![4081397027, 1394556965]);
    // the "bad" keyring lacks keyids, which upstream's schema requires
    let bad = read(&format!("{VERIFICATION}/ima_bad_keyring_string.json"));
    let mut pol = RuntimePolicy::empty();
    pol.verification_keys = bad.trim().to_owned();
    let e = PreparedRuntimePolicy::prepare(&pol).unwrap_err();
    assert!(e.to_string().contains("keyids"), "{e}");
    // the policy fixture that embeds verification keys prepares with them
    let p = policy_with_keys(
        Some("policy/keylime-unit-tests/runtime_policy_with_verification_keys.json"),
        None,
    );
    assert!(!p.verification_keys().is_empty());
}

/// Files under testdata/policy that are not runtime policies or allowlists (keys,
/// signatures, device-mapper policies, a deliberately bogus document).
fn not_a_policy(name: &str) -> bool {
    [".pem", ".pub", ".sig", ".pgp", ".bin"]
        .iter()
        .any(|e| name.ends_with(e))
        || name.contains("dm_example_policy")
        || name.ends_with("runtime-policy-bogus.json")
        || name.ends_with("keylime-signing/allowlist.json")
        || name.contains("exclude")
}

#[test]
fn every_policy_sample_prepares() {
    let excludes = read("policy/keylime-tests/create-policy-static-data/test3/exclude-list-1");
    let (mut documents, mut allowlists) = (0, 0);
    let mut stack = vec![testdata("policy")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = rel(&p);
            if not_a_policy(&name) {
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            let policy = match PolicyDocument::parse(&bytes, DEFAULT_MAX_POLICY_LEN, false) {
                Ok(doc) => {
                    documents += 1;
                    doc.policy().clone()
                }
                Err(_) => {
                    // a flat legacy allowlist
                    allowlists += 1;
                    let text = String::from_utf8(bytes).unwrap();
                    let converted =
                        from_legacy(&text, Some(&excludes), None, DEFAULT_MAX_POLICY_LEN);
                    if name.ends_with("allowlist-unknown") {
                        // a 16-byte digest: upstream's schema wants 40 to 128 hex characters
                        assert!(converted.is_err(), "{name}");
                        continue;
                    }
                    converted.unwrap_or_else(|e| panic!("{name}: {e}"))
                }
            };
            let prepared =
                PreparedRuntimePolicy::prepare(&policy).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(prepared.digest_names(), policy.digests.len(), "{name}");
            assert_eq!(prepared.exclude_count(), policy.excludes.len(), "{name}");
            for (path, list) in &policy.digests {
                let got = prepared.file_digests(path).unwrap().to_hex();
                let want: Vec<&String> = list.iter().filter(|d| !d.contains(':')).collect();
                assert_eq!(got.len(), want.len(), "{name} {path}");
            }
        }
    }
    assert!(
        documents >= 24 && allowlists >= 9,
        "{documents} {allowlists}"
    );
}
