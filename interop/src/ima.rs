//! A real IMA measurement list played into an agent's swtpm: entries of a recorded ASCII
//! list (shared test data) are appended to the file the agent serves as its
//! `ima_ml_path`, and PCR 10 is extended for each as the kernel would (SHA-1 bank: the
//! log's template hash; SHA-256 bank: SHA-256 of the template data; `0xFF…` for a
//! violation). A runtime policy (upstream's format v1) allowing the first entries'
//! file digests lets the verifier pass them and catch a later entry it does not allow.

use std::io::Write;
use std::path::{Path, PathBuf};

use keylime_ima::{HashAlg, parse_log, template_hash};
use serde_json::json;

/// The recorded list the scenarios use: 826 `ima-ng` entries with SHA-1 file digests,
/// starting with an all-zero `boot_aggregate`.
pub const RECORDED_LOG: &str = "ima/rust-keylime/ascii_runtime_measurements";

/// Lines of the recorded list, and how many of them have been played.
pub struct ImaPlayer {
    lines: Vec<String>,
    played: usize,
    log: PathBuf,
    tcti: String,
}

impl ImaPlayer {
    /// Reads the recorded list; entries will be appended to `log` and extended into the TPM
    /// behind `tcti` (a tpm2-tools TCTI string).
    pub fn new(log: &Path, tcti: &str) -> ImaPlayer {
        let path = keylime_testkit::testdata(RECORDED_LOG);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        std::fs::write(log, "").unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        ImaPlayer {
            lines: text.lines().map(str::to_string).collect(),
            played: 0,
            log: log.to_path_buf(),
            tcti: tcti.to_string(),
        }
    }

    /// Appends the next `n` entries to the log and extends PCR 10 for each.
    pub fn play(&mut self, n: usize) {
        let end = self.played + n;
        assert!(
            end <= self.lines.len(),
            "the recorded list has only {} entries",
            self.lines.len()
        );
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.log.display()));
        for line in &self.lines[self.played..end] {
            let entry = parse_log(line)
                .next()
                .expect("one entry per line")
                .unwrap_or_else(|e| panic!("recorded entry does not parse: {e}"));
            let (sha1, sha256) = if entry.is_violation() {
                ("ff".repeat(20), "ff".repeat(32))
            } else {
                (
                    entry.template_hash.to_hex(),
                    template_hash(&entry, HashAlg::Sha256)
                        .expect("SHA-256 template hash")
                        .to_hex(),
                )
            };
            extend_pcr10(&self.tcti, &sha1, &sha256);
            writeln!(file, "{line}").expect("appending to the IMA log");
        }
        self.played = end;
    }

    /// The entry at `index` (0-based): its path and SHA-1 file digest.
    pub fn file_digest(&self, index: usize) -> (String, String) {
        let entry = parse_log(&self.lines[index])
            .next()
            .expect("one entry per line")
            .expect("recorded entry parses");
        (entry.name.to_string(), entry.digest.digest.to_hex())
    }

    /// A runtime policy (format v1, as upstream's `keylime_create_policy` writes it)
    /// allowing exactly the file digests of the first `n` entries.
    pub fn policy_allowing_first(&self, n: usize) -> serde_json::Value {
        let mut digests = serde_json::Map::new();
        for i in 0..n {
            let (path, digest) = self.file_digest(i);
            let list = digests.entry(path).or_insert_with(|| json!([]));
            if let Some(a) = list.as_array_mut()
                && !a.contains(&json!(digest))
            {
                a.push(json!(digest));
            }
        }
        json!({
            "meta": {"version": 1, "generator": 3},
            "release": 0,
            "digests": digests,
            "excludes": [],
            "keyrings": {},
            "ima": {"ignored_keyrings": [], "log_hash_alg": "sha1", "dm_policy": null},
            "ima-buf": {},
            "verification-keys": ""
        })
    }
}

/// `tpm2_pcrextend 10:sha1=…,sha256=…` on the TPM behind `tcti`.
fn extend_pcr10(tcti: &str, sha1: &str, sha256: &str) {
    keylime_testkit::swtpm::pcr_extend(tcti, &format!("10:sha1={sha1},sha256={sha256}"));
}
