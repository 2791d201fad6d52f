//! Fuzz the whole IMA check: a list chunk (lossy UTF-8, as the verifier receives it) against
//! a small policy with excludes and keyrings, fresh or resumed, with the quoted value taken
//! from the input so that both the matching and the mismatching paths are reached.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use keylime_ima::policy::RuntimePolicy;
use keylime_ima::{
    HashAlg, ImaCheckInput, ImaState, PreparedRuntimePolicy, Replay, check, parse_log,
};
use libfuzzer_sys::fuzz_target;

fn policy() -> &'static PreparedRuntimePolicy {
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

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let bank = if flags & 1 == 0 {
        HashAlg::Sha1
    } else {
        HashAlg::Sha256
    };
    // quote the value the parsable prefix replays to, or zeros
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
        policy: (flags & 4 == 0).then(policy),
        ignore_tomtou_errors: flags & 8 != 0,
    };
    let v = check(&input, &ImaState::default());
    if v.passed() {
        // a passing round resumes with an empty chunk
        let again = ImaCheckInput {
            list: "",
            first_entry: v.next_state.next_entry,
            ..input
        };
        let _ = check(&again, &v.next_state);
    }
});
