//! Parse + replay time of real logs, and the whole measured-boot check (parse, replay,
//! PCR comparison and the `example` policy with a reference state derived from the same
//! log), printed in µs per log besides criterion's statistics.

use std::collections::BTreeMap;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use keylime_eventlog::{EventLog, HashAlg, PreparedMbPolicy, check, refstate_from_log, replay};

const LOGS: &[&str] = &[
    "eventlog/rust-keylime/uefi_log.bin",
    "eventlog/keylime/binary_bios_measurements",
    "eventlog/go-tpm-tools/ubuntu-2104-no-dbx.bin",
];

/// Logs the `example` policy accepts with a reference state derived from them.
const POLICY_LOGS: &[&str] = &[
    "eventlog/keylime-tests/mb_log_secureboot.bin",
    "eventlog/keylime/binary_bios_measurements-secureboot",
    "eventlog/python3-uefi-eventlog/css-flex14vm4-bootlog.bin",
];

fn per_log_us(rounds: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..rounds {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
}

fn bench(c: &mut Criterion) {
    for rel in LOGS.iter().chain(POLICY_LOGS) {
        let bytes = std::fs::read(keylime_testkit::testdata(rel)).expect("read test log");
        let events = EventLog::parse(&bytes).expect("parse").events.len();
        let us = per_log_us(200, || {
            let log = EventLog::parse(std::hint::black_box(&bytes)).expect("parse");
            std::hint::black_box(replay(&log));
        });
        println!("{rel}: {events} events, parse+replay {us:.1} µs per log");
        c.bench_function(&format!("parse+replay {rel}"), |b| {
            b.iter(|| replay(&EventLog::parse(std::hint::black_box(&bytes)).expect("parse")))
        });
    }
    for rel in POLICY_LOGS {
        let bytes = std::fs::read(keylime_testkit::testdata(rel)).expect("read test log");
        let refstate = refstate_from_log(&bytes, true).expect("reference state");
        let policy = PreparedMbPolicy::prepare("example", Some(&refstate)).expect("prepare");
        let quoted: BTreeMap<u8, Vec<u8>> = replay(&EventLog::parse(&bytes).expect("parse"))
            [&HashAlg::Sha256]
            .iter()
            .map(|(pcr, v)| (*pcr as u8, v.clone()))
            .collect();
        let run = || {
            check(
                std::hint::black_box(&bytes),
                HashAlg::Sha256,
                &quoted,
                &policy,
            )
        };
        assert!(run().failures.is_empty(), "{rel} must be accepted");
        let us = per_log_us(200, || {
            std::hint::black_box(run());
        });
        println!("{rel}: parse+replay+policy (example) {us:.1} µs per log");
        c.bench_function(&format!("parse+replay+policy {rel}"), |b| b.iter(run));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
