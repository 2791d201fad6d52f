//! Our side of the measured-boot comparison, per real UEFI event log: the time of
//! parse+replay (base64 as the agent sends it, `EventLog::parse`, `replay`, the boot
//! aggregates) and of the verifier's whole measured-boot check with the `example` policy
//! (`keylime_eventlog::check`: parse, replay, compare with the quoted PCRs, evaluate), the
//! reference state made from the same log by `refstate_from_log` and prepared once, outside
//! the timing. The quote is simulated as a TPM would give it: the replayed value of every
//! measured-boot PCR, the reset value for those the log never extends. Prints one JSON
//! object with the median round per log in microseconds.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Parser;
use keylime_bench::timing::{Budget, Samples, measure};
use keylime_eventlog::{
    EventLog, HashAlg, MEASURED_BOOT_PCRS, PreparedMbPolicy, boot_aggregates, check,
    refstate_from_log, replay,
};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "Time keylime_eventlog parse+replay and the measured-boot check per log")]
struct Args {
    /// Binary UEFI event logs.
    #[arg(required = true)]
    logs: Vec<PathBuf>,
    /// The quote's bank: sha1 or sha256.
    #[arg(long, default_value = "sha256")]
    bank: String,
    /// Rounds to run at least, per log and figure.
    #[arg(long, default_value_t = 50)]
    min_rounds: u32,
    /// Seconds to spend at least, per log and figure.
    #[arg(long, default_value_t = 1.0)]
    min_time: f64,
}

fn figure(samples: &Samples) -> Value {
    json!({ "us": samples.micros_per(1), "rounds": samples.count() })
}

/// What a TPM would quote after this boot: every measured-boot PCR of `bank`.
fn simulated_quote(log: &EventLog, bank: HashAlg) -> BTreeMap<u8, Vec<u8>> {
    let replayed = replay(log).remove(&bank).unwrap_or_default();
    MEASURED_BOOT_PCRS
        .iter()
        .map(|&pcr| {
            let value = replayed
                .get(&u32::from(pcr))
                .cloned()
                .unwrap_or_else(|| vec![0; bank.digest_len()]);
            (pcr, value)
        })
        .collect()
}

fn bench_log(path: &PathBuf, bank: HashAlg, budget: Budget) -> anyhow::Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let wire = STANDARD.encode(&bytes);
    let mut report = json!({
        "log": path,
        "parse_replay": null,
        "policy": null,
        "note": "",
    });

    let log = match EventLog::parse(&bytes) {
        Ok(log) => log,
        Err(e) => {
            report["note"] = json!(format!("does not parse: {e}"));
            return Ok(report);
        }
    };
    report["events"] = json!(log.events.len());
    let parse_replay = measure(budget, || {
        let raw = STANDARD.decode(&wire).ok()?;
        let log = EventLog::parse(&raw).ok()?;
        let banks = replay(&log);
        Some((banks.len(), boot_aggregates(&banks).len()))
    });
    report["parse_replay"] = figure(&parse_replay);

    let refstate = match refstate_from_log(&bytes, false) {
        Ok(r) => r,
        Err(e) => {
            report["note"] = json!(format!("no reference state from the log: {e}"));
            return Ok(report);
        }
    };
    let policy = PreparedMbPolicy::prepare("example", Some(&refstate)).with_context(|| {
        format!(
            "{}: the generated reference state does not compile",
            path.display()
        )
    })?;
    let quoted = simulated_quote(&log, bank);
    let verdict = check(&bytes, bank, &quoted, &policy);
    if !verdict.failures.is_empty() || !verdict.evaluated {
        let ids: Vec<String> = verdict.failures.iter().map(|f| f.event_id()).collect();
        report["note"] = json!(format!(
            "example policy rejects the log's own reference state: {ids:?}"
        ));
        return Ok(report);
    }
    let with_policy = measure(budget, || {
        let raw = STANDARD.decode(&wire).ok()?;
        let verdict = check(&raw, bank, &quoted, &policy);
        Some(verdict.failures.len())
    });
    report["policy"] = figure(&with_policy);
    Ok(report)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bank = match args.bank.as_str() {
        "sha1" => HashAlg::Sha1,
        "sha256" => HashAlg::Sha256,
        other => bail!("unsupported bank {other:?}: sha1 or sha256"),
    };
    let budget = Budget {
        min_rounds: args.min_rounds,
        min_time: Duration::from_secs_f64(args.min_time),
    };
    let logs = args
        .logs
        .iter()
        .map(|p| bench_log(p, bank, budget))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = json!({
        "implementation": "keylime-rs (keylime_eventlog)",
        "bank": bank.name(),
        "logs": logs,
    });
    println!("{report}");
    Ok(())
}
