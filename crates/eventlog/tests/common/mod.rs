//! Helpers shared by the measured-boot tests: reading the corpus, the quote a TPM would
//! give for a log, and running the `example` policy.
#![allow(dead_code)]

use std::collections::BTreeMap;

use keylime_eventlog::{
    EventLog, HashAlg, MbFailure, MbPolicyError, MbVerdict, PreparedMbPolicy, check,
    refstate_from_log, replay,
};
use serde_json::{Value, json};

pub fn read(rel: &str) -> Vec<u8> {
    std::fs::read(keylime_testkit::testdata(rel)).expect("read test log")
}

/// The bank a verifier would quote: SHA-256 when the log has it, else its only bank.
pub fn bank_of(bytes: &[u8]) -> HashAlg {
    let banks = replay(&EventLog::parse(bytes).expect("parse"));
    if banks.contains_key(&HashAlg::Sha256) {
        HashAlg::Sha256
    } else {
        banks.keys().next().copied().unwrap_or(HashAlg::Sha256)
    }
}

/// What a TPM would quote after this boot: the replay, and zeros for PCRs nothing extended.
pub fn quote_of(bytes: &[u8], bank: HashAlg) -> BTreeMap<u8, Vec<u8>> {
    let banks = replay(&EventLog::parse(bytes).expect("parse"));
    (0u8..24)
        .map(|i| {
            let value = banks
                .get(&bank)
                .and_then(|b| b.get(&u32::from(i)))
                .cloned()
                .unwrap_or_else(|| vec![0; bank.digest_len()]);
            (i, value)
        })
        .collect()
}

/// `keylime-policy create measured-boot`, with `--without-secureboot` when the log needs it.
pub fn derive(bytes: &[u8]) -> Result<Value, MbPolicyError> {
    match refstate_from_log(bytes, true) {
        Err(MbPolicyError::SecureBootDisabled) => {
            let refstate = refstate_from_log(bytes, false)?;
            assert_eq!(refstate["has_secureboot"], json!(false));
            Ok(refstate)
        }
        other => other,
    }
}

pub fn check_example(bytes: &[u8], refstate: &Value) -> MbVerdict {
    let policy = PreparedMbPolicy::prepare("example", Some(refstate)).expect("prepare");
    let bank = bank_of(bytes);
    check(bytes, bank, &quote_of(bytes, bank), &policy)
}

pub fn ids(v: &MbVerdict) -> Vec<String> {
    v.failures.iter().map(MbFailure::event_id).collect()
}

pub fn reason(v: &MbVerdict) -> String {
    v.failures
        .iter()
        .find(|f| f.id == "policy_example")
        .and_then(|f| f.context["reason"].as_str())
        .unwrap_or_else(|| panic!("no policy_example failure in {:?}", ids(v)))
        .to_string()
}
