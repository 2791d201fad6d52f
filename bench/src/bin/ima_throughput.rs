//! Our side of the IMA comparison: one attestation covering a whole measurement list
//! (`keylime_ima::check` from the default state, with the policy prepared once, as the
//! verifier caches it per policy version), repeated on one thread. Prints one JSON object:
//! the median round and entries per second, and the time to load and prepare the policy.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use keylime_bench::timing::{Budget, measure};
use keylime_ima::policy::{DEFAULT_MAX_POLICY_LEN, RuntimePolicy};
use keylime_ima::{HashAlg, ImaCheckInput, ImaState, PreparedRuntimePolicy, check};

#[derive(Parser)]
#[command(about = "Time keylime_ima::check over a measurement list and runtime policy")]
struct Args {
    /// ASCII IMA measurement list.
    #[arg(long)]
    log: PathBuf,
    /// Runtime policy JSON (format v1).
    #[arg(long)]
    policy: PathBuf,
    /// `expected.json` written by gen_ima (the quoted PCR 10 per bank).
    #[arg(long)]
    expected: PathBuf,
    /// The quote's bank: sha1 or sha256.
    #[arg(long, default_value = "sha256")]
    bank: String,
    /// Rounds to run at least.
    #[arg(long, default_value_t = 10)]
    min_rounds: u32,
    /// Seconds to spend at least.
    #[arg(long, default_value_t = 5.0)]
    min_time: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bank = match args.bank.as_str() {
        "sha1" => HashAlg::Sha1,
        "sha256" => HashAlg::Sha256,
        other => bail!("unsupported bank {other:?}: sha1 or sha256"),
    };
    let list = std::fs::read_to_string(&args.log)
        .with_context(|| format!("reading {}", args.log.display()))?;
    let policy_json = std::fs::read(&args.policy)
        .with_context(|| format!("reading {}", args.policy.display()))?;
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&args.expected)
            .with_context(|| format!("reading {}", args.expected.display()))?,
    )?;
    let pcr10_hex = expected["pcr10"][bank.name()]
        .as_str()
        .with_context(|| format!("no pcr10.{} in {}", bank.name(), args.expected.display()))?;
    let pcr10 = hex::decode(pcr10_hex).context("pcr10 is not hex")?;
    let policy_paths = expected["policy_paths"].as_u64().unwrap_or_default();

    let load = || -> anyhow::Result<PreparedRuntimePolicy> {
        let policy = RuntimePolicy::from_json(&policy_json, DEFAULT_MAX_POLICY_LEN)?;
        Ok(PreparedRuntimePolicy::prepare(&policy)?)
    };
    let prepared = load()?;
    let prepare_samples = measure(
        Budget {
            min_rounds: 3,
            min_time: Duration::ZERO,
        },
        || load().map(|p| p.digest_names()),
    );

    let quoted_pcrs = BTreeMap::from([(10u8, pcr10.clone())]);
    let input = ImaCheckInput {
        list: &list,
        first_entry: 0,
        bank,
        quoted_pcr10: &pcr10,
        quoted_pcrs: &quoted_pcrs,
        extra_boot_aggregates: &[],
        policy: Some(&prepared),
        ignore_tomtou_errors: false,
    };
    let verdict = check(&input, &ImaState::default());
    ensure!(
        verdict.passed(),
        "the list was rejected: {:?}",
        verdict
            .failures
            .iter()
            .take(5)
            .map(|f| &f.id)
            .collect::<Vec<_>>()
    );
    let entries = verdict.evaluated_entries;
    ensure!(
        verdict.next_state.next_entry == entries && verdict.chain_entries == entries,
        "only {} of {} entries verified",
        verdict.next_state.next_entry,
        verdict.chain_entries
    );

    let samples = measure(
        Budget {
            min_rounds: args.min_rounds,
            min_time: Duration::from_secs_f64(args.min_time),
        },
        || check(&input, &ImaState::default()).passed(),
    );

    let report = serde_json::json!({
        "implementation": "keylime-rs (keylime_ima::check)",
        "entries": entries,
        "policy_paths": policy_paths,
        "bank": bank.name(),
        "rounds": samples.count(),
        "attestation_s": samples.median().as_secs_f64(),
        "entries_per_s": samples.per_second(entries),
        "prepare_s": prepare_samples.median().as_secs_f64(),
    });
    println!("{report}");
    Ok(())
}
