#![doc = include_str!("../README.md")]
use std::path::PathBuf;

pub mod ports;
pub mod postgres;
pub mod swtpm;

pub use swtpm::Swtpm;

/// The shared, read-only test data (`../shared/testdata` beside the repository root).
///
/// Tests read these files in place; they are never copied into the project.
pub fn testdata_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("shared")
        .join("testdata")
}

/// Path of one file or folder inside [`testdata_dir`].
pub fn testdata(rel: &str) -> PathBuf {
    testdata_dir().join(rel)
}

/// Assert that `docs/openapi/{name}` holds `generated` (a service's OpenAPI description).
/// With `KEYLIME_UPDATE_OPENAPI=1` the file is rewritten instead.
pub fn check_openapi_copy(name: &str, generated: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("docs")
        .join("openapi")
        .join(name);
    if std::env::var_os("KEYLIME_UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(&path, generated)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(
        committed == generated,
        "{} is out of date: regenerate it with KEYLIME_UPDATE_OPENAPI=1 cargo nextest run \
         -E 'test(committed_copy_is_current)'",
        path.display()
    );
}

/// Whether the test process runs as root (effective uid 0). A test that can check less
/// without root (files of other owners, say) calls this with what it then leaves out: it
/// says so loudly, and fails when `CI` is set, since CI must run every check.
pub fn running_as_root(weakened: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    root_decision(root, std::env::var("CI").ok().as_deref(), weakened)
        .unwrap_or_else(|message| panic!("{message}"))
}

/// [`running_as_root`]'s decision, given whether we are root and the value of `CI`.
fn root_decision(root: bool, ci: Option<&str>, weakened: &str) -> Result<bool, String> {
    if root {
        return Ok(true);
    }
    let message = format!("NOT RUNNING AS ROOT: {weakened} is not checked");
    if ci.is_some_and(|v| !v.is_empty() && v != "0" && v != "false") {
        return Err(format!("{message}; CI must run the tests as root"));
    }
    eprintln!("WARNING: {message} (run as root for the full test)");
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::root_decision;

    #[test]
    fn not_root_is_a_warning_outside_ci_and_a_failure_in_ci() {
        assert_eq!(root_decision(true, Some("true"), "x"), Ok(true));
        assert_eq!(root_decision(false, None, "x"), Ok(false));
        assert_eq!(root_decision(false, Some(""), "x"), Ok(false));
        assert_eq!(root_decision(false, Some("false"), "x"), Ok(false));
        let e = root_decision(false, Some("true"), "skipping other owners' files").unwrap_err();
        assert!(
            e.contains("skipping other owners' files") && e.contains("CI"),
            "{e}"
        );
    }

    #[test]
    fn testdata_is_reachable() {
        assert!(
            super::testdata("PROVENANCE.md").is_file(),
            "shared testdata missing at {:?}",
            super::testdata_dir()
        );
    }
}
