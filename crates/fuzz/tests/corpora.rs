//! Every committed seed and crash reproducer (`fuzz/seeds/<target>/`,
//! `fuzz/regressions/<target>/`) through its target's entry point, on stable Rust without
//! libFuzzer: a reproducer of a fixed crash that panics again fails here.

use std::fs;
use std::path::{Path, PathBuf};

use keylime_fuzz::{TARGETS, target};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `fuzz/<kind>/<target>/` (none when `fuzz/<kind>` does not exist).
fn inputs(kind: &str) -> Vec<(String, PathBuf)> {
    let root = fuzz_dir().join(kind);
    let Ok(dirs) = fs::read_dir(&root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for dir in dirs {
        let dir = dir.expect("directory entry").path();
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        for file in fs::read_dir(&dir).expect("target directory") {
            out.push((name.clone(), file.expect("file").path()));
        }
    }
    out.sort();
    out
}

/// Runs every input through its target's entry point (a panic fails the test).
fn run_all(inputs: &[(String, PathBuf)]) {
    for (name, path) in inputs {
        let t = target(name).unwrap_or_else(|| panic!("{}: no target {name}", path.display()));
        let data = fs::read(path).expect("input");
        eprintln!("{name}: {}", path.display());
        (t.run)(&data);
    }
}

/// Seeds and crash reproducers alike: every target has seeds, and no committed input makes
/// its target panic (a reproducer of a fixed crash that crashes again fails here).
#[test]
fn committed_inputs_run_clean() {
    let seeds = inputs("seeds");
    for t in TARGETS {
        assert!(
            seeds.iter().any(|(name, _)| name == t.name),
            "target {} has no committed seeds in fuzz/seeds/{}",
            t.name,
            t.name
        );
    }
    run_all(&seeds);
    run_all(&inputs("regressions"));
}

#[test]
fn every_target_has_a_fuzz_binary_and_back() {
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let bins: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "keylime-fuzz-targets")
        .collect();
    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(
        bins, names,
        "fuzz/Cargo.toml [[bin]]s and keylime_fuzz::TARGETS differ"
    );
    for name in names {
        let source = fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs")))
            .unwrap_or_else(|e| panic!("fuzz_targets/{name}.rs: {e}"));
        assert!(
            source.contains(&format!("keylime_fuzz::{}", entry_path(name))),
            "fuzz_targets/{name}.rs does not call its entry point"
        );
    }
}

/// `tpm_pcr_blob` → `tpm::pcr_blob`: the module is the part before the first `_`.
fn entry_path(name: &str) -> String {
    let (module, function) = name
        .split_once('_')
        .expect("target names are module_function");
    format!("{module}::{function}")
}
