//! The verifier's IMA check end to end: a generated 100k-entry ima-ng log (sha256 file
//! digests, sha1 template hashes, sha256 bank) against a 100k-path policy, chain and
//! evaluation. Prints entries/s per core, then runs criterion (which reports elem/s).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keylime_ima::policy::RuntimePolicy;
use keylime_ima::{HashAlg, ImaCheckInput, ImaState, PreparedRuntimePolicy, check};
use sha1::Digest as _;

const ENTRIES: usize = 100_000;

fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Fixture {
    list: String,
    pcr10: Vec<u8>,
    policy: RuntimePolicy,
}

fn fixture() -> Fixture {
    let mut list = String::with_capacity(ENTRIES * 160);
    let mut pcr = vec![0u8; 32];
    let mut policy = RuntimePolicy::empty();
    policy.meta.generator = 3;
    for i in 0..ENTRIES {
        let path = format!(
            "/usr/lib64/python3.12/site-packages/pkg{}/mod{i}.py",
            i % 977
        );
        let digest = sha2::Sha256::digest(path.as_bytes());
        let mut data = Vec::with_capacity(128);
        data.extend_from_slice(&(6u32 + 2 + 32).to_le_bytes());
        data.extend_from_slice(b"sha256:\0");
        data.extend_from_slice(&digest);
        data.extend_from_slice(&(path.len() as u32 + 1).to_le_bytes());
        data.extend_from_slice(path.as_bytes());
        data.push(0);
        let th = sha1::Sha1::digest(&data);
        list.push_str(&format!(
            "10 {} ima-ng sha256:{} {path}\n",
            hexs(&th),
            hexs(&digest)
        ));
        let m = sha2::Sha256::digest(&data);
        pcr = sha2::Sha256::digest([pcr.as_slice(), m.as_slice()].concat()).to_vec();
        policy.digests.insert(path, vec![hexs(&digest)]);
    }
    Fixture {
        list,
        pcr10: pcr,
        policy,
    }
}

fn run(f: &Fixture, policy: &PreparedRuntimePolicy, pcrs: &BTreeMap<u8, Vec<u8>>) -> u64 {
    let v = check(
        &ImaCheckInput {
            list: &f.list,
            first_entry: 0,
            bank: HashAlg::Sha256,
            quoted_pcr10: &f.pcr10,
            quoted_pcrs: pcrs,
            extra_boot_aggregates: &[],
            policy: Some(policy),
            ignore_tomtou_errors: false,
        },
        &ImaState::default(),
    );
    assert!(v.passed(), "{:?}", v.failures.first());
    assert_eq!(v.evaluated_entries, ENTRIES as u64);
    v.chain_entries
}

/// This thread's user + system CPU time (Linux), so a loaded machine's figure can be read
/// per core actually used.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // fields after the parenthesised command name; utime and stime are fields 14 and 15
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let pcrs = BTreeMap::new();

    let start = Instant::now();
    let policy = PreparedRuntimePolicy::prepare(&f.policy).expect("policy prepares");
    println!(
        "prepare: {} paths in {:.1} ms",
        policy.digest_names(),
        start.elapsed().as_secs_f64() * 1e3
    );

    let start = Instant::now();
    let cpu_start = thread_cpu_seconds();
    let mut done = 0u64;
    while start.elapsed() < Duration::from_secs(3) {
        done += run(&f, &policy, &pcrs);
    }
    let wall = start.elapsed().as_secs_f64();
    let rate = done as f64 / wall;
    println!(
        "check (chain sha1+sha256, 100k-path policy): {rate:.0} entries/s wall ({:.0} ns/entry)",
        1e9 / rate
    );
    if let (Some(a), Some(b)) = (cpu_start, thread_cpu_seconds()) {
        let cpu = b - a;
        println!(
            "  on-CPU: {:.0} entries/s per core ({:.0}% of the wall time on a CPU)",
            done as f64 / cpu,
            100.0 * cpu / wall
        );
    }

    let mut g = c.benchmark_group("ima_check");
    g.sample_size(10);
    g.throughput(Throughput::Elements(ENTRIES as u64));
    g.bench_function("ima_ng_100k_policy_100k", |b| {
        b.iter(|| run(&f, &policy, &pcrs))
    });
    g.bench_function("ima_ng_100k_chain_only", |b| {
        b.iter(|| {
            check(
                &ImaCheckInput {
                    list: &f.list,
                    first_entry: 0,
                    bank: HashAlg::Sha256,
                    quoted_pcr10: &f.pcr10,
                    quoted_pcrs: &pcrs,
                    extra_boot_aggregates: &[],
                    policy: None,
                    ignore_tomtou_errors: false,
                },
                &ImaState::default(),
            )
            .chain_entries
        })
    });
    g.bench_function("prepare_100k_paths", |b| {
        b.iter(|| PreparedRuntimePolicy::prepare(&f.policy).expect("prepares"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
