//! IMA emulator for end-to-end tests: a measurement-list file the agent serves (its
//! `ima_ml_path`) kept in step with swtpm's PCR 10, in every bank the tests quote (sha1 and
//! sha256), exactly as the kernel extends them: `H_bank(template data)`, or all-`0xFF` for a
//! violation entry.
//!
//! [`ImaEmulator::load`] extends a whole real log through our TPM client before the agent
//! starts (opening the TPM flushes stale transient objects, harmless then). While the agent
//! runs, [`ImaEmulator::append`] extends with `tpm2_pcrextend`, which leaves the agent's
//! loaded keys alone. [`ImaEmulator::drop_entry`] rewrites the file without one entry and
//! leaves the PCR as it is: a broken chain.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use keylime_ima::{HashAlg, parse_line, template_hash};
use keylime_tpm::{Tcti, Tpm};

/// PCR banks the emulator extends.
pub const BANKS: [HashAlg; 2] = [HashAlg::Sha1, HashAlg::Sha256];

/// The per-bank digests one measurement-list line extends PCR 10 with.
pub fn extend_digests(line: &str) -> Vec<(HashAlg, Vec<u8>)> {
    let entry = parse_line(line, 1).unwrap_or_else(|e| panic!("bad IMA line {line:?}: {e}"));
    BANKS
        .iter()
        .map(|&bank| {
            let digest = if entry.is_violation() {
                vec![0xff; bank.digest_len()]
            } else {
                template_hash(&entry, bank)
                    .expect("template hash")
                    .as_ref()
                    .to_vec()
            };
            (bank, digest)
        })
        .collect()
}

/// An ima-ng (or any template) line with its template hash computed: `fields` is
/// everything after the template hash, e.g. `ima-ng sha256:<hex> /usr/bin/x`.
pub fn line_with_template_hash(fields: &str) -> String {
    // Parse with a non-zero placeholder, then put the real SHA-1 template hash in.
    let placeholder = format!("10 {} {fields}", "11".repeat(20));
    let entry =
        parse_line(&placeholder, 1).unwrap_or_else(|e| panic!("bad fields {fields:?}: {e}"));
    let hash = template_hash(&entry, HashAlg::Sha1).expect("template hash");
    format!("10 {} {fields}", hex::encode(hash.as_ref()))
}

/// The `boot_aggregate` entry of a machine whose PCRs 0–9 are still at their reset value
/// (a software TPM nobody booted): SHA-256 over ten zero PCRs.
pub fn fresh_boot_aggregate_line() -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update([0u8; 32 * 10]);
    line_with_template_hash(&format!(
        "ima-ng sha256:{} boot_aggregate",
        hex::encode(h.finalize())
    ))
}

/// The ima-ng line measuring the file at `path` (SHA-256 of its content).
pub fn measure_file_line(path: &Path) -> std::io::Result<String> {
    use sha2::Digest as _;
    let content = std::fs::read(path)?;
    Ok(line_with_template_hash(&format!(
        "ima-ng sha256:{} {}",
        hex::encode(sha2::Sha256::digest(&content)),
        path.display()
    )))
}

/// A measurement-list file and the swtpm whose PCR 10 mirrors it.
pub struct ImaEmulator {
    path: PathBuf,
    tcti: String,
    lines: Vec<String>,
}

impl ImaEmulator {
    /// Writes `log` to `path` and extends swtpm's PCR 10 with every entry (agent not
    /// running yet).
    pub fn load(path: &Path, tcti: &str, log: &str) -> ImaEmulator {
        let lines: Vec<String> = log
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        let mut tpm = Tpm::open(&Tcti::parse(tcti).expect("tcti")).expect("open swtpm");
        for line in &lines {
            for (bank, digest) in extend_digests(line) {
                tpm.pcr_extend(10, bank, &digest).expect("PCR 10 extend");
            }
        }
        drop(tpm);
        let emu = ImaEmulator {
            path: path.to_owned(),
            tcti: tcti.to_owned(),
            lines,
        };
        emu.write_file();
        emu
    }

    /// Opens the list at `path` (an absent file is an empty list) without extending
    /// anything: the PCR is assumed to match it already.
    pub fn open(path: &Path, tcti: &str) -> ImaEmulator {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let emu = ImaEmulator {
            path: path.to_owned(),
            tcti: tcti.to_owned(),
            lines: text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect(),
        };
        emu.write_file();
        emu
    }

    /// The entries in the list.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The current list text.
    pub fn text(&self) -> String {
        self.lines.iter().map(|l| format!("{l}\n")).collect()
    }

    fn write_file(&self) {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, self.text()).expect("write IMA list");
        std::fs::rename(&tmp, &self.path).expect("replace IMA list");
    }

    /// Measures one more entry: PCR 10 first (as the kernel does), then the list line.
    pub fn append(&mut self, line: &str) {
        let specs: Vec<String> = extend_digests(line)
            .into_iter()
            .map(|(bank, d)| format!("{}={}", bank.name(), hex::encode(d)))
            .collect();
        keylime_testkit::swtpm::pcr_extend(&self.tcti, &format!("10:{}", specs.join(",")));
        self.lines.push(line.to_owned());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .expect("open IMA list");
        writeln!(f, "{line}").expect("append IMA line");
    }

    /// Removes entry `index` from the list file only (PCR 10 keeps it): a broken chain.
    pub fn drop_entry(&mut self, index: usize) -> String {
        let removed = self.lines.remove(index);
        self.write_file();
        removed
    }
}
