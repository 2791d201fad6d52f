//! `keylime-policy create runtime` through the binary: file trees, IMA lists, legacy
//! allowlists and exclude lists, base policies, upstream's golden outputs, and bad input.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{fails, json, ok, run, stderr, td, td_str};
use serde_json::Value;
use sha2::Digest as _;

const GOLDEN: &str = "policy/keylime-tests/create-policy-static-data";

fn without_timestamp(mut v: Value) -> Value {
    let meta = v["meta"].as_object_mut().expect("meta");
    assert!(meta.remove("timestamp").is_some(), "timestamp written");
    v
}

fn create(args: &[&str]) -> Value {
    let mut full = vec!["create", "runtime"];
    full.extend_from_slice(args);
    let v = json(&ok(&full));
    assert_eq!(v["meta"]["version"], 1);
    assert_eq!(v["meta"]["generator"], 3);
    v
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, data).expect("write");
}

fn digests(v: &Value) -> BTreeMap<String, Vec<String>> {
    serde_json::from_value(v["digests"].clone()).expect("digests map")
}

#[test]
fn rootfs_files_are_hashed_with_upstream_skips() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path().join("root");
    write(&root, "usr/bin/tool", b"tool contents");
    write(&root, "etc/with space", b"spaced");
    write(&root, "empty", b"");
    write(&root, "skipme/inner/file", b"skipped by -s");
    write(&root, "tmp/file", b"skipped: /tmp is always excluded");
    write(&root, "proc/file", b"skipped: /proc is always excluded");
    write(&root, "usr/share/deep/er/file", b"deep");
    std::os::unix::fs::symlink(root.join("usr/bin/tool"), root.join("usr/bin/link"))
        .expect("symlink");
    std::os::unix::fs::symlink("/etc", root.join("etcdir")).expect("dir symlink");
    // root-owned files only: when the test runs as root, a file handed to another user
    // must be left out; otherwise every file is another user's and nothing is hashed
    let as_root = keylime_testkit::running_as_root(
        "hashing root's files and leaving out another user's (create runtime --rootfs)",
    );
    if as_root {
        write(&root, "usr/bin/users", b"not root's");
        std::os::unix::fs::chown(root.join("usr/bin/users"), Some(1000), Some(1000))
            .expect("chown");
    }
    let skip = root.join("skipme");
    let v = create(&[
        "--rootfs",
        root.to_str().expect("utf8"),
        "-s",
        skip.to_str().expect("utf8"),
    ]);
    let got = digests(&v);
    if !as_root {
        assert!(
            got.is_empty(),
            "files not owned by root must be skipped: {got:?}"
        );
        return;
    }
    let want: BTreeMap<String, Vec<String>> = [
        ("/usr/bin/tool", &b"tool contents"[..]),
        ("/etc/with_space", b"spaced"),
        ("/empty", b""),
        ("/usr/share/deep/er/file", b"deep"),
    ]
    .into_iter()
    .map(|(k, d)| (k.to_owned(), vec![sha256_hex(d)]))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn rootfs_digest_algorithms_and_many_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path();
    for i in 0..300 {
        write(
            root,
            &format!("d{}/f{i}", i % 7),
            format!("file {i}").as_bytes(),
        );
    }
    let as_root =
        keylime_testkit::running_as_root("the digests of a rootfs tree (create runtime --rootfs)");
    let root_s = root.to_str().expect("utf8");
    for (alg, len) in [
        ("sha1", 40),
        ("sha256", 64),
        ("sha384", 96),
        ("sha512", 128),
    ] {
        let got = digests(&create(&["--rootfs", root_s, "--algo", alg]));
        if !as_root {
            assert!(got.is_empty());
            continue;
        }
        assert_eq!(got.len(), 300, "{alg}");
        assert!(
            got.values().all(|d| d.len() == 1 && d[0].len() == len),
            "{alg}"
        );
    }
    if as_root {
        let got = digests(&create(&["--rootfs", root_s]));
        assert_eq!(got["/d3/f10"], vec![sha256_hex(b"file 10")]);
        let got = digests(&create(&["--rootfs", root_s, "--algo", "sha1"]));
        assert_eq!(
            got["/d3/f10"],
            vec![hex::encode(sha1::Sha1::digest(b"file 10"))]
        );
    }
    // the whole tree is skipped when it lies inside a skipped directory
    let got = digests(&create(&["--rootfs", root_s, "-s", root_s]));
    assert!(got.is_empty());
}

/// (path, digest hex) of the ima-ng and ima-sig lines, split the simple way.
fn list_digests(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(' ').collect();
        if f[2] == "ima-ng" || f[2] == "ima-sig" {
            let hex = f[3].split_once(':').expect("algo:hex").1;
            out.entry(f[4].to_owned()).or_default().push(hex.to_owned());
        }
    }
    for v in out.values_mut() {
        v.sort();
        v.dedup();
    }
    out
}

#[test]
fn policy_digests_match_every_testdata_list() {
    for rel in [
        "ima/keylime-tests/ascii_runtime_measurements-ima-sig",
        "ima/keylime-tests/ima_log.txt",
        "ima/rust-keylime/ascii_runtime_measurements",
        "ima/rust-keylime/ima_log.txt",
        "ima/keylime-create-runtime-policy/ima-log-sha1",
        "ima/keylime-create-runtime-policy/ima-log-sha256",
        "ima/keylime-create-runtime-policy/ima-log-sha384",
        "ima/keylime-create-runtime-policy/ima-log-sha512",
        "ima/keylime-unit-tests/ima_verification/measurements.txt",
        "ima/keylime-unit-tests/ima_verification/signatures.txt",
    ] {
        let text = std::fs::read_to_string(td(rel)).expect("list");
        let want = list_digests(&text);
        assert!(!want.is_empty(), "{rel}");
        let v = create(&["-m", &td_str(rel)]);
        assert_eq!(digests(&v), want, "{rel}");
        assert_eq!(v["keyrings"], serde_json::json!({}), "{rel}");
    }
    // the legacy "ima" template carries no digests upstream takes
    let v = create(&["-m", &td_str("ima/keylime/ascii_runtime_measurements_ima")]);
    assert!(digests(&v).is_empty());
}

#[test]
fn keyrings_and_ima_buf_entries() {
    let list = td_str("ima/keylime-tests/ima_log.txt");
    let v = create(&["-m", &list, "--keyrings", "--ima-buf"]);
    assert_eq!(v["keyrings"].as_object().expect("keyrings").len(), 2, "{v}");
    assert!(v["keyrings"][".ima"].is_array());
    assert_eq!(
        v["ima-buf"]["dm_table_load"].as_array().expect("buf").len(),
        1
    );
    let v = create(&["-m", &list, "--keyrings", "--ignored-keyrings", ".ima"]);
    assert!(v["keyrings"].get(".ima").is_none());
    assert_eq!(v["ima"]["ignored_keyrings"], serde_json::json!([".ima"]));
    assert_eq!(v["ima-buf"], serde_json::json!({}));
    let keyrings = create(&[
        "-m",
        &td_str("ima/keylime-unit-tests/ima_verification/keyrings.txt"),
        "-k",
    ]);
    assert_eq!(
        keyrings["keyrings"][".ima"],
        serde_json::json!(["a7d52aaa18c23d2d9bb2abb4308c0eeee67387a42259f4a6b1a42257065f3d5a"])
    );
}

#[test]
fn upstream_golden_outputs() {
    let g = |rel: &str| td_str(&format!("{GOLDEN}/{rel}"));
    let ima_sig = td_str("ima/keylime-tests/ascii_runtime_measurements-ima-sig");
    let ima_buf = td_str("ima/keylime-tests/ascii_runtime_measurements-ima-buf");
    let base1 = g("test2/output1.json");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["-m".into(), "/dev/null".into()], "test1/output1.json"),
        (vec!["-m".into(), ima_sig.clone()], "test2/output1.json"),
        (
            vec![
                "-p".into(),
                base1.clone(),
                "-m".into(),
                ima_buf.clone(),
                "--ima-buf".into(),
            ],
            "test2/output3.json",
        ),
        (
            vec![
                "-p".into(),
                base1.clone(),
                "-m".into(),
                ima_buf.clone(),
                "--ignored-keyrings".into(),
                ".builtin_trusted_keys".into(),
                "--ima-buf".into(),
            ],
            "test2/output4.json",
        ),
        (
            vec![
                "-p".into(),
                base1.clone(),
                "-m".into(),
                ima_buf.clone(),
                "--ignored-keyrings".into(),
                ".builtin_trusted_keys".into(),
                "--keyrings".into(),
            ],
            "test2/output5.json",
        ),
        (
            vec![
                "-p".into(),
                base1,
                "-m".into(),
                ima_buf,
                "--ignored-keyrings".into(),
                ".builtin_trusted_keys".into(),
                "-k".into(),
                "-b".into(),
            ],
            "test2/output6.json",
        ),
        (
            vec!["-m".into(), ima_sig, "-e".into(), g("test3/exclude-list-1")],
            "test3/output1.json",
        ),
        (
            vec![
                "-p".into(),
                g("test3/output1.json"),
                "--ignored-keyrings".into(),
                ".builtin_trusted_keys".into(),
                "--ignored-keyrings".into(),
                "test123".into(),
            ],
            "test3/output2.json",
        ),
        (
            vec![
                "-p".into(),
                g("test3/output2.json"),
                "--add-ima-signature-verification-key".into(),
                g("test3/eckey-ecdsa.pem"),
            ],
            "test3/output3.json",
        ),
        (
            vec!["-a".into(), g("test4/allowlist-1")],
            "test2/output1.json",
        ),
    ];
    for (args, golden) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let got = without_timestamp(create(&args));
        let want = without_timestamp(json(&std::fs::read_to_string(g(golden)).expect("golden")));
        assert_eq!(got, want, "{args:?} vs {golden}");
    }
}

#[test]
fn merge_with_a_base_policy() {
    let dir = "policy/keylime-tests/policy-commands";
    let v = create(&[
        "-p",
        &td_str(&format!("{dir}/base_policy.json")),
        "-a",
        &td_str(&format!("{dir}/allowlist.txt")),
        "-e",
        &td_str(&format!("{dir}/excludelist.txt")),
        "-m",
        &td_str("ima/rust-keylime/ima_log.txt"),
    ]);
    let d = digests(&v);
    assert_eq!(
        d["test"],
        vec!["f2ca1bb6c7e907d06dafe4687e579fce76b37e4e93b7605022da52e6ccc26fd2"]
    );
    // the base policy's boot_aggregate and the list's are both kept, sorted
    assert_eq!(
        d["boot_aggregate"],
        vec![
            "0000000000000000000000000000000000000000000000000000000000000000",
            "fec395eacfbd4d9bfd3ddce68ccf0792159494ff7aae89c556f7f2796046f871",
        ]
    );
    assert_eq!(v["excludes"], serde_json::json!(["test"]));
    assert_eq!(v["ima"]["log_hash_alg"], "sha256");
    assert_eq!(v["release"], 0);
    // idempotent: merging the output into itself changes nothing but the timestamp
    let dir2 = tempfile::tempdir().expect("tmp");
    let out = dir2.path().join("p.json");
    std::fs::write(&out, v.to_string()).expect("write");
    let again = create(&["-p", out.to_str().expect("utf8")]);
    assert_eq!(without_timestamp(again), without_timestamp(v));
}

#[test]
fn digest_algorithm_sources_must_agree() {
    let crp = |kind: &str, alg: &str| {
        td_str(&format!(
            "{}/{kind}-{alg}",
            if kind == "ima-log" {
                "ima/keylime-create-runtime-policy"
            } else {
                "policy/keylime-create-runtime-policy"
            }
        ))
    };
    for alg in ["sha1", "sha256", "sha384", "sha512"] {
        let v = create(&[
            "-p",
            &crp("policy", alg),
            "-a",
            &crp("allowlist", alg),
            "-m",
            &crp("ima-log", alg),
            "--algo",
            alg,
        ]);
        assert_eq!(digests(&v).len(), 4, "{alg}: {v}");
    }
    fails(
        &[
            "create",
            "runtime",
            "-a",
            &crp("allowlist", "sha256"),
            "-m",
            &crp("ima-log", "sha1"),
        ],
        1,
        "does not match",
    );
    fails(
        &[
            "create",
            "runtime",
            "--algo",
            "sha384",
            "-p",
            &crp("policy", "sha1"),
        ],
        1,
        "base policy",
    );
    fails(
        &["create", "runtime", "-m", &crp("ima-log", "unknown")],
        1,
        "invalid digest algorithm found in the IMA measurement list",
    );
    fails(
        &["create", "runtime", "-a", &crp("allowlist", "unknown")],
        1,
        "invalid digest algorithm found in the allowlist",
    );
    // sm3_256 base policy and list agree (64 digits are ambiguous)
    let v = create(&[
        "-p",
        &crp("policy", "sm3_256"),
        "-a",
        &crp("allowlist", "sm3_256"),
    ]);
    assert_eq!(digests(&v).len(), 2);
}

#[test]
fn legacy_allowlist_output() {
    let out = ok(&[
        "create",
        "runtime",
        "-m",
        &td_str("ima/keylime-tests/ascii_runtime_measurements-ima-sig"),
        "--show-legacy-allowlist",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[0],
        "76f8ae56f16b39f55be8145bee2824a6d64a84c009104f58305ea2449479da72  boot_aggregate"
    );
    assert!(lines[1..].iter().all(|l| l.contains("  /usr/lib/systemd/")));
}

#[test]
fn output_file_is_written() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("policy.json");
    let stdout = ok(&["create", "runtime", "-o", out.to_str().expect("utf8")]);
    assert!(stdout.is_empty());
    let text = std::fs::read_to_string(&out).expect("written");
    // upstream's json.dumps layout
    assert!(
        text.starts_with(r#"{"meta": {"version": 1, "generator": 3, "timestamp": ""#),
        "{text}"
    );
    assert!(text.ends_with(r#""verification-keys": ""}"#), "{text}");
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
        &["create", "runtime", "-m", "/nonexistent/list"],
        1,
        "/nonexistent/list",
    );
    fails(
        &[
            "create",
            "runtime",
            "-m",
            &td_str("ima/rust-keylime/invalid_ima_log.txt"),
        ],
        1,
        "line 1",
    );
    let garbage = p("garbage", b"10 zz ima-ng sha1:00 x\n");
    fails(&["create", "runtime", "-m", &garbage], 1, "line 1");
    let latin1 = p("latin1", b"10 0000000000000000000000000000000000000000 ima-ng sha1:0000000000000000000000000000000000000000 /caf\xe9\n");
    fails(&["create", "runtime", "-m", &latin1], 1, "not UTF-8");
    fails(
        &[
            "create",
            "runtime",
            "-m",
            &td_str("ima/tpm2-tss/sml-ima-ng-sha1.bin"),
        ],
        1,
        "binary",
    );
    fails(&["create", "runtime", "--algo", "md5"], 2, "md5");
    let bad_rule = p("excludes", b"ok\n*\n");
    fails(
        &["create", "runtime", "-e", &bad_rule],
        1,
        "bad IMA exclude list rule",
    );
    let not_json = p("base", b"{not json");
    fails(
        &["create", "runtime", "-p", &not_json],
        1,
        "not a JSON runtime policy",
    );
    let bad_digest = p("base2", br#"{"digests": {"/x": ["ZZ"]}}"#);
    fails(&["create", "runtime", "-p", &bad_digest], 1, "digests");
    let bad_allow = p("allow", b"\xff\xfe  /x\n");
    fails(&["create", "runtime", "-a", &bad_allow], 1, "not UTF-8");
    fails(
        &[
            "create",
            "runtime",
            "-a",
            dir.path().to_str().expect("utf8"),
        ],
        1,
        "directory",
    );
    fails(
        &["create", "runtime", "--rootfs", "/nonexistent/root"],
        1,
        "not a directory",
    );
    fails(
        &["create", "runtime", "-o", "/nonexistent/dir/out.json"],
        1,
        "/nonexistent/dir/out.json",
    );
    let key = p("key", b"not a key");
    fails(
        &[
            "create",
            "runtime",
            "--add-ima-signature-verification-key",
            &key,
        ],
        1,
        "supported key",
    );
    // a line with a huge field is refused by the parser's limit, not by running out of memory
    let mut huge = b"10 ".to_vec();
    huge.extend(std::iter::repeat_n(b'0', 2 << 20));
    huge.extend_from_slice(b" ima-ng sha1:00 x\n");
    let huge = p("huge", &huge);
    let o = run(&["create", "runtime", "-m", &huge]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}
