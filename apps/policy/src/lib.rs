//! `keylime-policy`: creates runtime policies (from a file tree, an IMA measurement list, a
//! legacy allowlist and exclude list, merged into a base policy) and measured-boot reference
//! states (from a UEFI event log), signs runtime policies into DSSE envelopes, and inspects
//! IMA measurement lists and event logs. Command names and flags are upstream's.
//!
//! Each subcommand is one module with a `run` function; `main.rs` only parses arguments.
#![forbid(unsafe_code)]

pub mod cli;
pub mod eventlog;
pub mod inspect_ima;
pub mod output;
pub mod runtime;
pub mod sign;

use cli::{Action, Cli, Create, Inspect, Sign};

/// Runs one command.
pub fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.action {
        Action::Create(Create::Runtime(args)) => runtime::run(args),
        Action::Create(Create::MeasuredBoot(args)) => eventlog::create_measured_boot(args),
        Action::Sign(Sign::Runtime(args)) => sign::run(args),
        Action::Inspect(Inspect::Ima(args)) => inspect_ima::run(&args.file, args.json),
        Action::Inspect(Inspect::Eventlog(args)) => eventlog::inspect(&args.file, args.json),
    }
}

/// Whether the command asked for debug logging.
pub fn verbose(cli: &Cli) -> bool {
    matches!(&cli.action, Action::Create(Create::Runtime(a)) if a.verbose)
}
