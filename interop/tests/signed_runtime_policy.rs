//! DSSE-signed runtime policies (signed by our `keylime-policy sign runtime`) added with
//! upstream's tenant to upstream's verifier and to ours, both requiring signatures: the
//! same outcomes from both (accepted with the right key; refused with another key, unsigned
//! without a key, and unsigned with a key).

use keylime_interop::services::Implementation;
use keylime_interop::signed_runtime_policy::{SignedPolicyOutcomes, signed_runtime_policy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_policy_accepted_wrong_key_and_unsigned_refused_by_both_verifiers() {
    let theirs =
        signed_runtime_policy("signed policy: upstream verifier", Implementation::Upstream).await;
    let ours = signed_runtime_policy("signed policy: our verifier", Implementation::Ours).await;

    // Upstream's behaviour, as observed: the signed policy is stored; the tenant itself
    // refuses the envelope with another key; the verifier answers 401 to the envelope with
    // another key, to an unsigned policy without a key (tenant exits 1), and to an unsigned
    // policy with a key (it ignores a key given with an unsigned policy).
    let expected = SignedPolicyOutcomes {
        tenant_right_key_exit: Some(0),
        stored_status: 200,
        tenant_wrong_key_exit: Some(1),
        tenant_unsigned_exit: Some(1),
        wrong_key_status: 401,
        unsigned_status: 401,
        unsigned_with_key_status: 401,
    };
    assert_eq!(theirs, expected, "upstream's verifier");

    assert_eq!(
        ours, theirs,
        "our verifier answers differently from upstream's"
    );
}
