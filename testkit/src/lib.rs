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
