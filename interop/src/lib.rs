//! Interoperability harness against upstream Keylime 7.14.3: the Python verifier,
//! registrar and tenant installed from PyPI into a virtualenv (`scripts/upstream-keylime.sh`),
//! configured by the same upstream-format files our services read, beside our agent,
//! registrar, verifier and tenant binaries, with swtpm as the TPM and everything on loopback.
//!
//! What lives where:
//! - [`upstream`]: the virtualenv, built once per test process, and its executables;
//! - [`config_files`]: one deployment's `verifier.conf`, `registrar.conf`, `tenant.conf`,
//!   `ca.conf` and `logging.conf`, in upstream's INI format, read by both implementations;
//! - [`process`]: a service in its own process group, ended as a whole (upstream's
//!   services fork workers);
//! - [`services`]: starting either implementation's verifier and registrar from those files
//!   and waiting until they answer;
//! - [`tenant`]: running upstream's `keylime_tenant` and ours, and reading what they print;
//! - [`agent`]: our agent on its own swtpm, its payload and revocation-action fixtures, and
//!   changing a PCR behind the verifier's back;
//! - [`ima`]: a recorded IMA measurement list played into the agent's log and PCR 10, and
//!   a runtime policy for it;
//! - [`measured_boot`]: a recorded UEFI event log played into the agent's log and PCRs;
//! - [`scenarios`]: scenarios run against several pairings (runtime policy, measured boot);
//! - [`measured_boot_policy`]: measured boot under the `example` policy engine, with a
//!   reference state made by our `keylime-policy`;
//! - [`signed_runtime_policy`]: DSSE-signed runtime policies at a verifier requiring them;
//! - [`transcript`]: tenant output with the run-specific values masked in place, so runs
//!   against upstream's servers and ours, by upstream's tenant and ours, are compared byte
//!   for byte;
//! - [`webhook`]: a revocation webhook receiver keeping the bodies as they arrived, and the
//!   masking that makes two notices of one event comparable byte for byte.
//!
//! Every wait has a deadline; a missing tool (python3, swtpm, tpm2-tools) or a virtualenv
//! that cannot be built fails the test with the reason, it never skips it.

pub mod agent;
pub mod config_files;
pub mod ima;
pub mod measured_boot;
pub mod measured_boot_policy;
pub mod process;
pub mod scenarios;
pub mod services;
pub mod signed_runtime_policy;
pub mod tenant;
pub mod transcript;
pub mod upstream;
pub mod webhook;

use std::future::Future;
use std::time::{Duration, Instant};

pub use keylime_e2e::wait_until;

/// Polls `check` until it returns `Ok`, or panics after `timeout` naming `what` and the last
/// observation (the `Err` text) — what a failing wait most needs to show.
pub async fn poll<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(v) => return v,
            Err(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; last seen: {last}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Prints a step of a scenario, so a test's output reads as the pairing's story.
pub fn step(pairing: &str, scenario: &str) {
    eprintln!("==> [{pairing}] {scenario}");
}
