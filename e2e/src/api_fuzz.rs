//! The property-based API fuzzer: schemathesis (installed by `scripts/schemathesis.sh`,
//! pinned) run against a real service with the OpenAPI description its binary prints
//! (`--print-openapi`), over real TLS with the deployment's CA and client certificate.
//!
//! Checks: no 5xx (`not_a_server_error`), every status documented
//! (`status_code_conformance`) and every body matching its schema
//! (`response_schema_conformance`); a request hanging past the per-request timeout fails
//! the run. The number of generated requests per operation is bounded, not the time.
//!
//! A schemathesis that cannot be installed is a panic with the script's output: the test
//! fails, it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::bin;

/// Generated requests per operation and phase (the run's size, not a time budget).
pub const MAX_EXAMPLES: u32 = 25;

/// A fixed seed: a run is reproducible.
pub const SEED: u64 = 20261207;

/// The schemathesis executable, installed on first use in this process.
pub fn schemathesis() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("scripts")
            .join("schemathesis.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} failed ({}): schemathesis could not be installed\nstdout:\n{stdout}\nstderr:\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let exe = stdout
            .lines()
            .last()
            .map(|l| PathBuf::from(l.trim()))
            .unwrap_or_default();
        assert!(
            exe.is_file(),
            "{} printed no schemathesis path",
            script.display()
        );
        exe
    })
}

/// Where a fuzz run goes and with which credentials.
pub struct Target<'a> {
    /// `keylime_registrar` or `keylime_verifier`.
    pub binary: &'a str,
    /// Base URL, e.g. `https://127.0.0.1:8891`.
    pub url: String,
    /// The CA that signed the server certificate (for an `https` URL).
    pub ca: Option<PathBuf>,
    /// Client certificate and key (admin routes).
    pub client: Option<(PathBuf, PathBuf)>,
}

/// What a run did.
#[derive(Debug)]
pub struct FuzzRun {
    /// Operations tested.
    pub operations: u64,
    /// Test cases generated (one request each).
    pub test_cases: u64,
    /// Whether schemathesis exited 0 (no failed check, no error).
    pub passed: bool,
    /// Its whole output.
    pub output: String,
}

/// Run schemathesis against `target`, working in `dir`.
pub fn run(target: &Target<'_>, dir: &Path) -> FuzzRun {
    let spec = dir.join(format!("{}.openapi.json", target.binary));
    let out = Command::new(bin(target.binary))
        .arg("--print-openapi")
        .output()
        .expect("running --print-openapi");
    assert!(
        out.status.success(),
        "{} --print-openapi failed",
        target.binary
    );
    std::fs::write(&spec, &out.stdout).expect("writing the description");

    let report = dir.join(format!("{}.schemathesis.json", target.binary));
    let mut cmd = Command::new(schemathesis());
    cmd.arg("run")
        .arg(&spec)
        .args(["--url", &target.url])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", &MAX_EXAMPLES.to_string()])
        .args(["--seed", &SEED.to_string()])
        .args(["--workers", "1"])
        .args(["--request-timeout", "20"])
        // A keep-alive connection the server closes as idle while the next request is being
        // sent is the usual HTTP race, which clients answer by retrying: so does this one (a
        // hang still fails, after the retries).
        .args(["--request-retries", "2"])
        .args(["--max-redirects", "0"])
        .args(["--suppress-health-check", "all"])
        .args(["--report", "json", "--report-json-path"])
        .arg(&report)
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(dir);
    if let Some(ca) = &target.ca {
        cmd.arg("--tls-verify").arg(ca);
    }
    if let Some((cert, key)) = &target.client {
        cmd.arg("--request-cert")
            .arg(cert)
            .arg("--request-cert-key")
            .arg(key);
    }
    let log = dir.join(format!("{}.schemathesis.log", target.binary));
    let file = std::fs::File::create(&log).expect("creating the schemathesis log");
    let mut child = cmd
        .stdout(file.try_clone().expect("cloning the log handle"))
        .stderr(file)
        .spawn()
        .expect("starting schemathesis");
    let deadline = Instant::now() + RUN_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for schemathesis") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "schemathesis against {} did not finish within {RUN_DEADLINE:?} (a hang):\n{}",
                target.url,
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let (operations, test_cases) = figures(&report);
    FuzzRun {
        operations,
        test_cases,
        passed: status.success(),
        output,
    }
}

/// Operations tested and test cases generated, from the JSON report (0 when missing).
fn figures(report: &Path) -> (u64, u64) {
    let doc: serde_json::Value = std::fs::read_to_string(report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let at = |pointer: &str| doc.pointer(pointer).and_then(|v| v.as_u64()).unwrap_or(0);
    (at("/operations/tested"), at("/test_cases/generated"))
}

/// How long a whole run may take before it is treated as hung (a deadline, not a
/// performance threshold: a healthy run takes well under a tenth of it).
pub const RUN_DEADLINE: Duration = Duration::from_secs(600);
