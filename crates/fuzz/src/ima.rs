//! IMA measurement lists, the IMA check, runtime policies and legacy allowlists.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use keylime_ima::policy::{
    DEFAULT_MAX_POLICY_LEN, DsseKey, EcdsaSigningKey, PolicyDocument, RuntimePolicy, from_legacy,
    verify,
};
use keylime_ima::{
    HashAlg, ImaCheckInput, ImaState, PreparedRuntimePolicy, Replay, parse_binary_log, parse_log,
    template_hash,
};

/// The ASCII and binary list parsers and the template hashing of what they accept.
pub fn parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for entry in parse_log(&text).flatten() {
        let _ = template_hash(&entry, HashAlg::Sha1);
        let _ = entry.signature();
        let _ = entry.buffer();
    }
    for record in parse_binary_log(data).flatten() {
        let _ = template_hash(&record, HashAlg::Sha256);
    }
}

/// A small policy with digests, excludes and keyrings for [`check`].
fn check_policy() -> &'static PreparedRuntimePolicy {
    static P: OnceLock<PreparedRuntimePolicy> = OnceLock::new();
    P.get_or_init(|| {
        let mut p = RuntimePolicy::empty();
        p.meta.generator = 3;
        p.digests.insert("/bin/sh".into(), vec!["ab".repeat(32)]);
        p.keyrings.insert(".ima".into(), vec!["cd".repeat(32)]);
        p.excludes = vec!["/tmp/.*".into()];
        PreparedRuntimePolicy::prepare(&p).expect("fuzz policy prepares")
    })
}

/// The whole IMA check: the first byte holds flags (bank, whether the quoted PCR 10 is the
/// value the parsable prefix replays to or zeros, with or without the policy,
/// `ignore_tomtou_errors`), the rest is the list chunk (lossy UTF-8, as the verifier
/// receives it). A passing round is resumed with an empty chunk.
pub fn check(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let bank = if flags & 1 == 0 {
        HashAlg::Sha1
    } else {
        HashAlg::Sha256
    };
    let quoted = if flags & 2 == 0 {
        let mut r = Replay::new(bank).expect("supported bank");
        for e in parse_log(&text).map_while(Result::ok) {
            r.extend_entry(&e);
        }
        r.value().as_slice().to_vec()
    } else {
        vec![0; bank.digest_len()]
    };
    let pcrs = BTreeMap::new();
    let input = ImaCheckInput {
        list: &text,
        first_entry: 0,
        bank,
        quoted_pcr10: &quoted,
        quoted_pcrs: &pcrs,
        extra_boot_aggregates: &[],
        policy: (flags & 4 == 0).then(check_policy),
        ignore_tomtou_errors: flags & 8 != 0,
    };
    let v = keylime_ima::check(&input, &ImaState::default());
    if v.passed() {
        let again = ImaCheckInput {
            list: "",
            first_entry: v.next_state.next_entry,
            ..input
        };
        let _ = keylime_ima::check(&again, &v.next_state);
    }
}

/// The P-256 key DSSE envelopes are checked against (seeds are signed with it).
pub fn dsse_signing_key() -> EcdsaSigningKey {
    EcdsaSigningKey::P256(
        p256::ecdsa::SigningKey::from_slice(&[0x5A; 32]).expect("fixed P-256 scalar"),
    )
}

fn dsse_key() -> &'static DsseKey {
    static K: OnceLock<DsseKey> = OnceLock::new();
    K.get_or_init(|| dsse_signing_key().public_key())
}

/// A runtime policy upload (plain JSON or a DSSE envelope), strict and lenient, as the
/// verifier and tenant load it: parse, the envelope's certificates and signature, the
/// preparation the verifier caches. A policy that parses strictly serializes to JSON that
/// parses strictly to the same policy. The input as text is also tried as a PEM key.
pub fn policy(data: &[u8]) {
    for strict in [true, false] {
        let Ok(doc) = PolicyDocument::parse(data, DEFAULT_MAX_POLICY_LEN, strict) else {
            continue;
        };
        if let PolicyDocument::Dsse { envelope, .. } = &doc {
            let _ = DsseKey::from_envelope_certificates(envelope);
            let _ = verify(envelope, std::slice::from_ref(dsse_key()));
        }
        let policy = doc.policy();
        if strict {
            let again = RuntimePolicy::from_json(policy.to_json().as_bytes(), usize::MAX);
            assert_eq!(
                again.as_ref().ok(),
                Some(policy),
                "policy round-trips: {again:?}"
            );
        }
        let _ = PreparedRuntimePolicy::prepare(policy);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = DsseKey::from_pem(text);
    }
}

/// A legacy allowlist (flat text or JSON) and excludelist, split at the first NUL byte,
/// converted as the tenant and policy tool do; what converts prepares or fails cleanly.
pub fn allowlist(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (allow, exclude) = match text.split_once('\0') {
        Some((a, e)) => (a, Some(e)),
        None => (&*text, None),
    };
    if let Ok(policy) = from_legacy(allow, exclude, None, DEFAULT_MAX_POLICY_LEN) {
        let _ = PreparedRuntimePolicy::prepare(&policy);
    }
}
