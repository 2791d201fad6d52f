//! The quote string through the attestation engine, as the verifier runs it on an agent's
//! quote. A quote string is checked as sent (the signature almost never verifies); then its
//! parts (or the parts of the binary form, see [`quote`]) are re-signed with a software P-256
//! AK so that the nonce, PCR blob, PCR digest, clock and `tpm_policy` checks behind the
//! signature are reached too, twice in a row (the second round against the first round's
//! state).

use std::sync::{Arc, OnceLock};

use keylime_attestation::{
    AcceptedAlgorithms, AgentPolicy, AgentState, Nonce, PreparedPolicy, QuoteEvidence,
    SeverityPolicy, TpmPolicy, attest, verify_quote,
};
use keylime_tpm::marshal::Writer;
use keylime_tpm::templates::ak_ecc_with_unique;
use keylime_tpm::{Attest, HashAlg, Signature, quote as quote_string};
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::hazmat::PrehashSigner;

/// The `tpm_policy` of the fuzzed agent: PCR 0 all zeros (what a fresh SHA-256 bank holds).
const TPM_POLICY: &str =
    r#"{"0": ["0000000000000000000000000000000000000000000000000000000000000000"], "mask": "0x1"}"#;

struct SoftAk {
    key: SigningKey,
    policy: PreparedPolicy,
}

fn soft_ak() -> &'static SoftAk {
    static AK: OnceLock<SoftAk> = OnceLock::new();
    AK.get_or_init(|| {
        let key = SigningKey::from_slice(&[0x5A; 32]).expect("fixed P-256 scalar");
        let point = key.verifying_key().to_encoded_point(false);
        let tpmt = ak_ecc_with_unique(
            HashAlg::Sha256,
            point.x().expect("x"),
            point.y().expect("y"),
        );
        let mut ak_tpm = Writer::new();
        ak_tpm.tpm2b(&tpmt);
        let names = |xs: &[&str]| xs.iter().map(ToString::to_string).collect();
        let policy = AgentPolicy {
            ak_tpm: ak_tpm.into_vec(),
            tpm_policy: TpmPolicy::from_json_str(TPM_POLICY).expect("fixed tpm_policy"),
            accept: AcceptedAlgorithms {
                hash: names(&["sha1", "sha256", "sha384", "sha512"]),
                encryption: names(&["ecc"]),
                signing: names(&["ecdsa"]),
            },
            check_pcr16: false,
            check_clock: true,
        };
        let policy = PreparedPolicy::new(&policy, Arc::new(SeverityPolicy::default()))
            .expect("software AK parses");
        SoftAk { key, policy }
    })
}

/// The quote string of `attest` and `pcr_blob` signed by the software AK with `hash`
/// (`None` when the hash cannot sign with P-256).
pub fn signed_quote_string(attest: &[u8], hash: HashAlg, pcr_blob: &[u8]) -> Option<String> {
    let sig: p256::ecdsa::Signature = soft_ak().key.sign_prehash(&hash.digest(attest)).ok()?;
    let (r, s) = sig.split_bytes();
    let sig = Signature::Ecdsa {
        hash,
        r: r.to_vec(),
        s: s.to_vec(),
    };
    Some(quote_string::encode_quote_string(
        attest,
        &sig.to_bytes(),
        pcr_blob,
    ))
}

/// The nonce the quote string is checked against as sent.
pub const NONCE: &str = "abcdefghij0123456789";

/// The parts to re-sign (attest, signature hash, PCR blob) of either input form; a quote
/// string is checked as sent first.
fn parts(data: &[u8]) -> Option<(Vec<u8>, HashAlg, Vec<u8>)> {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(parts) = quote_string::decode_quote_string(text)
    {
        let nonce = Nonce::Text(NONCE.into());
        let _ = verify_quote(text, &soft_ak().policy.ak, &nonce, HashAlg::Sha256, None);
        let hash = Signature::parse(&parts.signature)
            .map(|s| s.hash())
            .unwrap_or(HashAlg::Sha256);
        return Some((parts.attest, hash, parts.pcr_blob));
    }
    let (&selector, rest) = data.split_first()?;
    let hash = [
        HashAlg::Sha256,
        HashAlg::Sha1,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ][usize::from(selector & 3)];
    let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    let body = rest.get(2..)?;
    let attest = body.get(..len)?;
    Some((attest.to_vec(), hash, body[len..].to_vec()))
}

/// See the module docs. The input is a quote string, or else the binary form
/// `[hash selector][attest length, u16 BE][TPMS_ATTEST][PCR blob]` (which mutates far better
/// than base64 text).
pub fn quote(data: &[u8]) {
    let Some((attest_bytes, hash, pcr_blob)) = parts(data) else {
        return;
    };
    let Ok(parsed) = Attest::parse(&attest_bytes) else {
        return;
    };
    let Some(text) = signed_quote_string(&attest_bytes, hash, &pcr_blob) else {
        return;
    };
    let evidence = QuoteEvidence {
        quote: text.as_str().into(),
        hash_alg: hash.to_string().into(),
        enc_alg: "ecc".into(),
        sign_alg: "ecdsa".into(),
        ..Default::default()
    };
    let nonce = Nonce::Bytes(parsed.extra_data.clone());
    let ak = soft_ak();
    let first = attest(&evidence, &nonce, &ak.policy, &AgentState::default());
    if first.passed() {
        assert!(first.pcrs.is_some(), "a passing quote reports its PCRs");
    }
    let _ = attest(&evidence, &nonce, &ak.policy, &first.next_state);
}
