//! Development tool: measures files into an IMA measurement list and swtpm's PCR 10, as the
//! kernel would, for the demo and manual tests on machines without real IMA.
//!
//! `keylime_ima_emulator --tcti TCTI --list FILE PATH...`: a new list starts with the
//! `boot_aggregate` of an unbooted software TPM; each PATH is hashed (SHA-256), appended as
//! an `ima-ng` entry and extended into PCR 10 (sha1 and sha256 banks, with tpm2_pcrextend).

use std::path::PathBuf;
use std::process::ExitCode;

use keylime_e2e::ima::{ImaEmulator, fresh_boot_aggregate_line, measure_file_line};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut tcti, mut list, mut files) = (None, None, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tcti" => tcti = args.next(),
            "--list" => list = args.next().map(PathBuf::from),
            "-h" | "--help" => {
                println!("usage: keylime_ima_emulator --tcti TCTI --list FILE PATH...");
                return ExitCode::SUCCESS;
            }
            _ => files.push(PathBuf::from(a)),
        }
    }
    let (Some(tcti), Some(list)) = (tcti, list) else {
        eprintln!("usage: keylime_ima_emulator --tcti TCTI --list FILE PATH...");
        return ExitCode::from(2);
    };
    let mut emu = ImaEmulator::open(&list, &tcti);
    if emu.is_empty() {
        emu.append(&fresh_boot_aggregate_line());
    }
    for f in &files {
        match measure_file_line(f) {
            Ok(line) => {
                emu.append(&line);
                println!("measured {}", f.display());
            }
            Err(e) => {
                eprintln!("cannot measure {}: {e}", f.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
