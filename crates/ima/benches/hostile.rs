//! How long hostile input takes where the tests bound only the work (`tests/check_hostile.rs`):
//! a 300,000-line garbage list through `check`, and exclude patterns that blow up when
//! compiled, refused by the size limit. Prints one figure per case, then runs criterion.

use std::collections::BTreeMap;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use keylime_ima::policy::RuntimePolicy;
use keylime_ima::{HashAlg, ImaCheckInput, ImaState, PreparedRuntimePolicy, check};

const GARBAGE_LINES: usize = 300_000;
const BOMBS: [&str; 3] = [
    "((a{100}){100}){100}",
    "(\\w{500}){500}",
    "[\\p{L}\\p{N}]{1000}{1000}",
];

fn check_garbage(list: &str, policy: &PreparedRuntimePolicy) -> u64 {
    let pcrs = BTreeMap::new();
    let v = check(
        &ImaCheckInput {
            list,
            first_entry: 0,
            bank: HashAlg::Sha256,
            quoted_pcr10: &[0; 32],
            quoted_pcrs: &pcrs,
            extra_boot_aggregates: &[],
            policy: Some(policy),
            ignore_tomtou_errors: false,
        },
        &ImaState::default(),
    );
    assert!(!v.passed());
    v.suppressed
}

fn refuse(bomb: &str) {
    let mut p = RuntimePolicy::empty();
    p.excludes = vec!["/tmp/.*".into(), bomb.into()];
    assert!(
        PreparedRuntimePolicy::prepare(&p).is_err(),
        "{bomb} refused"
    );
}

fn bench(c: &mut Criterion) {
    let garbage = "10 nothex ima-ng a b\n".repeat(GARBAGE_LINES);
    let policy = PreparedRuntimePolicy::prepare(&RuntimePolicy::empty()).expect("empty policy");

    let start = Instant::now();
    check_garbage(&garbage, &policy);
    let took = start.elapsed().as_secs_f64();
    println!(
        "garbage list: {GARBAGE_LINES} unparsable lines checked in {:.0} ms ({:.0} ns/line)",
        took * 1e3,
        took * 1e9 / GARBAGE_LINES as f64
    );
    for bomb in BOMBS {
        let start = Instant::now();
        refuse(bomb);
        println!(
            "regex bomb {bomb}: refused in {:.1} ms",
            start.elapsed().as_secs_f64() * 1e3
        );
    }

    let mut g = c.benchmark_group("ima_hostile");
    g.sample_size(10);
    g.bench_function("garbage_300k_lines", |b| {
        b.iter(|| check_garbage(&garbage, &policy))
    });
    g.bench_function("regex_bombs_refused", |b| {
        b.iter(|| BOMBS.iter().for_each(|bomb| refuse(bomb)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
