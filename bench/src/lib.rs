//! Benchmarks comparing this implementation with upstream Keylime 7.14.3 on the same inputs.
//!
//! The library holds what the benchmark binaries share: the deterministic IMA workload
//! ([`ima_fixture`]: a measurement list, its runtime policy and expected PCR 10 values) and
//! the timing loop ([`timing`]). The binaries (`gen_ima`, `ima_throughput`,
//! `eventlog_throughput`) print one JSON object each, which the comparison scripts
//! (`ima-vs-upstream.sh`, `mb-vs-upstream.sh`) put beside upstream's figures measured by
//! `upstream_ima.py` and `upstream_mb.py`.
//!
//! Development tooling only: nothing here is linked into a shipped binary.
#![forbid(unsafe_code)]

pub mod ima_fixture;
pub mod timing;
