//! `import-cycles [WORKSPACE_DIR]`: exit status 1 and a listing of every cycle between
//! modules of one crate that `tools/import-cycles/allowed-cycles.txt` does not allow.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

fn main() -> anyhow::Result<ExitCode> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    let allow_path = dir.join("tools/import-cycles/allowed-cycles.txt");
    let allow = match std::fs::read_to_string(&allow_path) {
        Ok(text) => keylime_import_cycles::allowed::parse(&text)
            .with_context(|| allow_path.display().to_string())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| allow_path.display().to_string()),
    };
    let report = keylime_import_cycles::check_workspace(&dir, &allow)?;
    for cycle in &report.allowed {
        println!(
            "allowed cycle in {}: {}",
            cycle.krate,
            cycle.modules.join(" ")
        );
    }
    for cycle in &report.cycles {
        eprint!("import cycle in {cycle}");
    }
    for stale in &report.stale {
        eprintln!(
            "allowed cycle no longer found (remove it from {}): {}: {}",
            allow_path.display(),
            stale.krate,
            stale.modules.join(" ")
        );
    }
    if report.passed() {
        match report.allowed.len() {
            0 => println!("no import cycles between modules"),
            n => println!("no import cycles between modules besides the {n} allowed"),
        }
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}
