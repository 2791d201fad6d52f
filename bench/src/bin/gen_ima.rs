//! Writes the IMA benchmark workload into a directory: `ascii_runtime_measurements`,
//! `runtime_policy.json` and `expected.json` (entry and path counts, PCR 10 per bank).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use keylime_bench::ima_fixture::{ImaFixtureSpec, generate};

#[derive(Parser)]
#[command(about = "Generate an ima-ng measurement list, its runtime policy and PCR 10 values")]
struct Args {
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Entries in the measurement list, boot_aggregate included.
    #[arg(long, default_value_t = 100_000)]
    entries: usize,
    /// Paths in the runtime policy (every logged path plus fillers).
    #[arg(long, default_value_t = 100_000)]
    policy_paths: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let fixture = generate(ImaFixtureSpec {
        entries: args.entries,
        policy_paths: args.policy_paths,
    });
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = args.out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    write("ascii_runtime_measurements", fixture.log.as_bytes())?;
    write("runtime_policy.json", fixture.policy.to_json().as_bytes())?;
    let expected = fixture.expected_json();
    write(
        "expected.json",
        serde_json::to_string_pretty(&expected)?.as_bytes(),
    )?;
    println!("{expected}");
    Ok(())
}
