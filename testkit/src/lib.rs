//! Development-only harnesses shared by the workspace's tests: where the shared test data
//! lives, a swtpm process per test, and loopback ports reserved across test processes.
//!
//! Nothing here is linked into a shipped binary.

use std::path::PathBuf;

pub mod ports;
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

#[cfg(test)]
mod tests {
    #[test]
    fn testdata_is_reachable() {
        assert!(
            super::testdata("PROVENANCE.md").is_file(),
            "shared testdata missing at {:?}",
            super::testdata_dir()
        );
    }
}
