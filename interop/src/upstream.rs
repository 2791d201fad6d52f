//! Upstream Keylime 7.14.3 in a virtualenv: `scripts/upstream-keylime.sh` builds it (or
//! finds it complete) once per test process, and this module hands out its executables.
//!
//! A virtualenv that cannot be built is a panic with the script's output: the interop
//! tests fail, they never skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The version the suite pins.
pub const VERSION: &str = "7.14.3";

/// An installed upstream Keylime.
#[derive(Debug, Clone)]
pub struct Upstream {
    venv: PathBuf,
}

impl Upstream {
    /// The virtualenv's root.
    pub fn venv(&self) -> &Path {
        &self.venv
    }

    /// An executable of the virtualenv (`keylime_verifier`, `keylime_tenant`, …).
    pub fn bin(&self, name: &str) -> PathBuf {
        let path = self.venv.join("bin").join(name);
        assert!(
            path.is_file(),
            "{} missing from the upstream virtualenv",
            path.display()
        );
        path
    }
}

/// The script that builds the virtualenv.
pub fn install_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join("upstream-keylime.sh")
}

/// Upstream Keylime, installed on first use in this process.
pub fn upstream() -> &'static Upstream {
    static UPSTREAM: OnceLock<Upstream> = OnceLock::new();
    UPSTREAM.get_or_init(|| {
        let script = install_script();
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{} failed ({}): upstream Keylime {VERSION} could not be installed\nstdout:\n{stdout}\nstderr:\n{stderr}",
            script.display(),
            out.status
        );
        let venv = stdout
            .lines()
            .last()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("{} printed no venv path", script.display()));
        assert!(
            venv.join("bin").join("keylime_verifier").is_file(),
            "{} is not an upstream Keylime virtualenv",
            venv.display()
        );
        Upstream { venv }
    })
}
