//! Parse + replay time of a real ~150-event log (and the rest of the corpus' large logs).

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use keylime_eventlog::{EventLog, replay};

const LOGS: &[&str] = &[
    "eventlog/rust-keylime/uefi_log.bin",
    "eventlog/keylime/binary_bios_measurements",
    "eventlog/go-tpm-tools/ubuntu-2104-no-dbx.bin",
];

fn bench(c: &mut Criterion) {
    for rel in LOGS {
        let bytes = std::fs::read(keylime_testkit::testdata(rel)).expect("read test log");
        let events = EventLog::parse(&bytes).expect("parse").events.len();
        // A plain per-log figure in µs, besides criterion's statistics.
        let rounds = 200u32;
        let start = Instant::now();
        for _ in 0..rounds {
            let log = EventLog::parse(std::hint::black_box(&bytes)).expect("parse");
            std::hint::black_box(replay(&log));
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        println!("{rel}: {events} events, parse+replay {us:.1} µs per log");
        c.bench_function(&format!("parse+replay {rel}"), |b| {
            b.iter(|| replay(&EventLog::parse(std::hint::black_box(&bytes)).expect("parse")))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
