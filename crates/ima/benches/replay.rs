//! Parse + template-hash check + PCR 10 replay (sha1 and sha256 banks) of the largest IMA
//! test log; criterion reports entries/s ("elem/s"), and a plain one-second loop prints the
//! figure per core as well.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keylime_ima::{ChainVerifier, EntryCheck, HashAlg, parse_log};

const LOG: &str = "ima/rust-keylime/ascii_runtime_measurements";

fn verify(text: &str) -> usize {
    verify_banks(text, &[HashAlg::Sha1, HashAlg::Sha256])
}

fn verify_banks(text: &str, banks: &[HashAlg]) -> usize {
    let mut v = ChainVerifier::new(HashAlg::Sha1, banks).expect("supported banks");
    let mut n = 0;
    for e in parse_log(text) {
        let e = e.expect("test log parses");
        let check = v.process(&e);
        assert!(!matches!(check, EntryCheck::Mismatch { .. }));
        n += 1;
    }
    n
}

fn bench(c: &mut Criterion) {
    let text = std::fs::read_to_string(keylime_testkit::testdata(LOG)).expect("test log");
    let entries = verify(&text);

    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        done += verify(&text) as u64;
    }
    let rate = done as f64 / start.elapsed().as_secs_f64();
    println!(
        "{LOG}: {entries} entries; parse+template-hash+replay(sha1,sha256): {rate:.0} entries/s per core"
    );

    let mut g = c.benchmark_group("ima");
    g.throughput(Throughput::Elements(entries as u64));
    g.bench_function("parse_check_replay_sha1_sha256", |b| {
        b.iter(|| verify(&text))
    });
    g.bench_function("parse_check_replay_sha1", |b| {
        b.iter(|| verify_banks(&text, &[HashAlg::Sha1]))
    });
    g.bench_function("parse_only", |b| {
        b.iter(|| parse_log(&text).filter(|e| e.is_ok()).count())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
