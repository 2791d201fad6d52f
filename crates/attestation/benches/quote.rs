//! One full quote check through the engine (quote string decode, AK signature, nonce, PCR
//! digest, clock, PCR 16 binding, `tpm_policy`), for an RSA-2048 and an ECC P-256 AK.
//! Criterion reports the time per check; a summary line with checks/s per core follows.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use common::*;
use criterion::{Criterion, criterion_group, criterion_main};
use keylime_attestation::pcr_checks::data_pcr_value;
use keylime_attestation::{AgentState, Nonce, attest};
use keylime_tpm::HashAlg;

fn bench_quotes(c: &mut Criterion) {
    for (name, ak) in [("rsa2048", SoftAk::rsa()), ("ecc_p256", SoftAk::p256())] {
        let bank = HashAlg::Sha256;
        let q = QuoteBuilder::new()
            .with_pcr(16, data_pcr_value(bank, PEM.as_bytes()))
            .with_clock(2000, 1, 0, true);
        let quote = q.build(&ak);
        let policy_text = format!(
            r#"{{"0": "{}", "1": "{}", "7": "{}", "mask": "0x10083"}}"#,
            hex::encode(pcr(bank, 0)),
            hex::encode(pcr(bank, 0x11)),
            hex::encode(pcr(bank, 0x77))
        );
        let mut p = agent_policy(&ak, &policy_text);
        p.check_pcr16 = true;
        let policy = prepare(&p);
        let prior = AgentState {
            tpm_clockinfo: Some(keylime_attestation::TpmClockInfo {
                clock: 1000,
                reset_count: 1,
                restart_count: 0,
                safe: 1,
            }),
            pubkey_pem: Some(PEM.to_string()),
            ..AgentState::default()
        };
        let ev = evidence(&ak, &quote);
        let nonce = Nonce::Text(NONCE.into());
        assert!(
            attest(&ev, &nonce, &policy, &prior).passed(),
            "bench quote must pass"
        );

        c.bench_function(&format!("attest_quote_{name}"), |b| {
            b.iter(|| black_box(attest(black_box(&ev), &nonce, &policy, &prior)))
        });

        let n = 2000;
        let start = Instant::now();
        for _ in 0..n {
            black_box(attest(black_box(&ev), &nonce, &policy, &prior));
        }
        let per = start.elapsed() / n;
        println!(
            "per-check {name}: {per:?} ({:.0} quote checks/s on one core)",
            1.0 / per.as_secs_f64()
        );
    }
}

criterion_group!(benches, bench_quotes);
criterion_main!(benches);
