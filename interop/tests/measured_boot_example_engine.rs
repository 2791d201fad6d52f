//! Measured boot under the `example` policy engine, with upstream's tenant and our agents,
//! against upstream's verifier and registrar (pairing 1 style) and against ours (pairing 2
//! style): a reference state made by our `keylime-policy create measured-boot` (the same
//! document upstream's makes) attests the machine whose TPM replays the log, and catches, by
//! policy rather than by PCR mismatch, the machine whose log names another kernel.

use keylime_interop::measured_boot_policy::example_engine;
use keylime_interop::services::Implementation;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_verifier_attests_then_catches_changed_kernel() {
    example_engine(
        "example engine: our agents + upstream registrar, verifier, tenant",
        Implementation::Upstream,
        "c0ffee00-0011-4a97-9ef7-75bd81c0e2e0",
        "c0ffee00-0012-4a97-9ef7-75bd81c0e2e0",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_verifier_attests_then_catches_changed_kernel() {
    example_engine(
        "example engine: upstream tenant + our registrar, verifier, agents",
        Implementation::Ours,
        "c0ffee00-0013-4a97-9ef7-75bd81c0e2e0",
        "c0ffee00-0014-4a97-9ef7-75bd81c0e2e0",
    )
    .await;
}
