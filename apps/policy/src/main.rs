//! keylime-policy: parses the command line, sets up logging on stderr and runs the command.
//! Exit status: 0 success, 1 failure (the reason on stderr), 2 usage error.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;
use keylime_policy::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if keylime_policy::verbose(&cli) {
        "debug"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
    match keylime_policy::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keylime-policy: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
