//! The runtime-policy model loads every policy sample in testdata/policy, applies upstream's
//! schema rules strictly where asked, and unwraps DSSE envelopes.

use keylime_ima::HashAlg;
use keylime_ima::policy::{
    DEFAULT_MAX_POLICY_LEN, Generator, PolicyDocument, PolicyError, RuntimePolicy, from_legacy,
};
use keylime_testkit::testdata;

const MAX: usize = DEFAULT_MAX_POLICY_LEN;

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(testdata(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

const STRICT_OK: &[&str] = &[
    "policy/keylime/sign-runtime-policy/runtime-policy.json",
    "policy/keylime/sign-runtime-policy/runtime-policy-empty.json",
    "policy/keylime-tests/policy-commands/base_policy.json",
    "policy/keylime-tests/create-policy-static-data/test1/output1.json",
    "policy/keylime-tests/create-policy-static-data/test2/output1.json",
    "policy/keylime-tests/create-policy-static-data/test2/output3.json",
    "policy/keylime-tests/create-policy-static-data/test2/output4.json",
    "policy/keylime-tests/create-policy-static-data/test2/output5.json",
    "policy/keylime-tests/create-policy-static-data/test2/output6.json",
    "policy/keylime-tests/create-policy-static-data/test3/output1.json",
    "policy/keylime-tests/create-policy-static-data/test3/output2.json",
    "policy/keylime-tests/create-policy-static-data/test3/output3.json",
    "policy/keylime-create-runtime-policy/policy-sha1",
    "policy/keylime-create-runtime-policy/policy-sha256",
    "policy/keylime-create-runtime-policy/policy-sha384",
    "policy/keylime-create-runtime-policy/policy-sha512",
    "policy/keylime-create-runtime-policy/policy-sm3_256",
    "policy/keylime-create-runtime-policy/policy-unknown",
    "policy/keylime-unit-tests/runtime_policy_with_verification_keys.json",
];

#[test]
fn upstream_generated_policies_pass_the_strict_schema_and_round_trip() {
    for rel in STRICT_OK {
        let p = RuntimePolicy::from_json(&read(rel), MAX).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(p.meta.version, 1, "{rel}");
        assert_eq!(p.generator(), Generator::LegacyAllowList, "{rel}");
        assert!(p.has_runtime_policy(), "{rel}");
        let want = if p.ima.log_hash_alg == "sha256" {
            HashAlg::Sha256
        } else {
            HashAlg::Sha1
        };
        assert_eq!(p.log_hash_alg().unwrap(), want, "{rel}");
        let again = RuntimePolicy::from_json(p.to_json().as_bytes(), MAX).unwrap();
        assert_eq!(again, p, "{rel}");
    }
    let p = RuntimePolicy::from_json(
        &read("policy/keylime-tests/create-policy-static-data/test3/output3.json"),
        MAX,
    )
    .unwrap();
    assert_eq!(p.excludes, vec!["/home/xyz".to_owned()]);
    assert_eq!(
        p.ima.ignored_keyrings,
        vec![".builtin_trusted_keys", "test123"]
    );
    assert!(p.verification_keys.contains("pubkeys"));
    assert_eq!(p.digests.len(), 4);
}

#[test]
fn unit_test_fixtures_need_the_lenient_loader() {
    for rel in [
        "policy/keylime-unit-tests/runtime_policy_test.json",
        "policy/keylime-unit-tests/runtime_policy_with_excludes.json",
        "policy/keylime-unit-tests/runtime_policy_wrong.json",
        "policy/keylime-unit-tests/runtime_policy_wrong_with_excludes.json",
    ] {
        let bytes = read(rel);
        let strict = RuntimePolicy::from_json(&bytes, MAX);
        assert!(
            matches!(
                strict,
                Err(PolicyError::Json(_) | PolicyError::Schema { .. })
            ),
            "{rel}: {strict:?}"
        );
        let p =
            RuntimePolicy::from_json_lenient(&bytes, MAX).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(p.generator(), Generator::Unknown, "{rel}");
    }
    let p = RuntimePolicy::from_json_lenient(
        &read("policy/keylime-unit-tests/runtime_policy_test.json"),
        MAX,
    )
    .unwrap();
    assert_eq!(
        p.keyrings[".ima"],
        vec!["a7d52aaa18c23d2d9bb2abb4308c0eeee67387a42259f4a6b1a42257065f3d5a"]
    );
}

#[test]
fn dsse_envelopes_unwrap_to_their_policy() {
    for rel in [
        "policy/keylime/runtime-policy-test-signed.json",
        "policy/keylime/runtime-policy-test-signed-bad.json",
    ] {
        let doc =
            PolicyDocument::parse(&read(rel), MAX, false).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let PolicyDocument::Dsse { envelope, policy } = &doc else {
            panic!("{rel}: not recognized as DSSE");
        };
        assert_eq!(envelope.payload_type, "application/vnd.keylime+json");
        assert!(!envelope.signatures.is_empty());
        assert_eq!(policy.generator(), Generator::CompatibleAllowList);
        // the legacy-converted payload carries an "sha256:" prefixed boot_aggregate, which
        // upstream's schema rejects
        let strict = PolicyDocument::parse(&read(rel), MAX, true).unwrap_err();
        assert!(
            matches!(&strict, PolicyError::Schema { field, .. } if field.contains("boot_aggregate")),
            "{strict}"
        );
    }
    let plain = PolicyDocument::parse(&read("policy/keylime/runtime-policy-test.json"), MAX, false)
        .unwrap();
    assert!(matches!(plain, PolicyDocument::Plain(_)));
    assert_eq!(plain.policy().digests.len(), 21);
}

#[test]
fn bad_documents_get_clear_errors() {
    let bogus = read("policy/keylime/sign-runtime-policy/runtime-policy-bogus.json");
    assert!(matches!(
        RuntimePolicy::from_json(&bogus, MAX),
        Err(PolicyError::Json(_))
    ));
    assert!(matches!(
        RuntimePolicy::from_json(&read(STRICT_OK[0]), 10),
        Err(PolicyError::TooLarge { max: 10, .. })
    ));

    let good = RuntimePolicy::from_json(&read(STRICT_OK[0]), MAX).unwrap();
    let mutate = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = serde_json::to_value(&good).unwrap();
        f(&mut v);
        RuntimePolicy::from_json(v.to_string().as_bytes(), MAX).unwrap_err()
    };
    let e = mutate(&|v| v["ima"]["log_hash_alg"] = "md5".into());
    assert!(
        matches!(&e, PolicyError::Schema { field, .. } if field == "ima.log_hash_alg"),
        "{e}"
    );
    let e = mutate(&|v| v["ima"]["dm_policy"] = serde_json::json!({"rules": {}}));
    assert!(
        matches!(&e, PolicyError::Schema { field, .. } if field == "ima.dm_policy"),
        "{e}"
    );
    let e = mutate(&|v| v["meta"]["generator"] = 7.into());
    assert!(
        matches!(&e, PolicyError::Schema { field, .. } if field == "meta.generator"),
        "{e}"
    );
    let e = mutate(&|v| v["digests"]["/x"] = serde_json::json!([]));
    assert!(e.to_string().contains("empty digest list"), "{e}");
    let e = mutate(&|v| v["keyrings"][".ima"] = serde_json::json!(["ABCDEF".repeat(8)]));
    assert!(e.to_string().contains("keyrings"), "{e}");
    let e = mutate(&|v| {
        v.as_object_mut().unwrap().remove("verification-keys");
    });
    assert!(e.to_string().contains("verification-keys"), "{e}");
    let e = mutate(&|v| {
        v["meta"].as_object_mut().unwrap().remove("generator");
    });
    assert!(
        matches!(&e, PolicyError::Schema { field, .. } if field == "meta.generator"),
        "{e}"
    );

    let empty = RuntimePolicy::empty();
    assert!(!empty.has_runtime_policy());
    assert_eq!(
        RuntimePolicy::from_json(empty.to_json().as_bytes(), MAX).unwrap(),
        empty
    );
}

#[test]
fn legacy_allowlists_convert_like_upstream() {
    let text = String::from_utf8(read(
        "policy/keylime-tests/create-policy-static-data/test4/allowlist-1",
    ))
    .unwrap();
    let ts = Some("2023-01-01 00:00:00".to_owned());
    let got = from_legacy(&text, None, ts, MAX).unwrap();
    // upstream's golden output for this conversion
    let want = RuntimePolicy::from_json(
        &read("policy/keylime-tests/create-policy-static-data/test2/output1.json"),
        MAX,
    )
    .unwrap();
    assert_eq!(got, want);

    let allow =
        String::from_utf8(read("policy/keylime-tests/policy-commands/allowlist.txt")).unwrap();
    let exclude =
        String::from_utf8(read("policy/keylime-tests/policy-commands/excludelist.txt")).unwrap();
    let p = from_legacy(&allow, Some(&exclude), None, MAX).unwrap();
    assert_eq!(p.excludes, vec!["test"]);
    assert_eq!(p.digests["test"].len(), 1);
    assert_eq!(p.generator(), Generator::LegacyAllowList);

    // Fedora CoreOS allowlist: %keyring entries go to keyrings, the sha256: prefix is dropped;
    // otherwise the same content as upstream's converted runtime-policy-test.json
    let short = String::from_utf8(read("policy/keylime/ima-allowlist-short.txt")).unwrap();
    let p = from_legacy(&short, None, None, MAX).unwrap();
    let upstream =
        RuntimePolicy::from_json_lenient(&read("policy/keylime/runtime-policy-test.json"), MAX)
            .unwrap();
    assert_eq!(p.keyrings, upstream.keyrings);
    assert_eq!(p.digests.len(), upstream.digests.len());
    for (path, list) in &upstream.digests {
        let stripped: Vec<String> = list
            .iter()
            .map(|d| d.trim_start_matches("sha256:").to_owned())
            .collect();
        assert_eq!(&p.digests[path], &stripped, "{path}");
    }

    // JSON legacy allowlist
    let json = r#"{"hashes": {"/bin/a": ["AB"], "/bin/b": ["00"]}}"#;
    let e = from_legacy(json, None, None, MAX).unwrap_err();
    assert!(e.to_string().contains("digests"), "{e}");
    let json = format!(
        r#"{{"hashes": {{"/bin/a": ["{d}", "{d}"]}}, "keyrings": {{".ima": ["{d}"]}}, "ima": {{"ignored_keyrings": ["*"]}}}}"#,
        d = "AB".repeat(20)
    );
    let p = from_legacy(&json, None, None, MAX).unwrap();
    assert_eq!(p.digests["/bin/a"], vec!["ab".repeat(20)]);
    assert_eq!(p.keyrings[".ima"].len(), 1);
    assert_eq!(p.ima.ignored_keyrings, vec!["*"]);
    assert!(from_legacy("justonefield\n", None, None, MAX).is_err());
}
