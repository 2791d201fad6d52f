//! Fuzz the measured-boot path a verifier runs on an agent's log: reference-state
//! derivation, policy preparation, the check under a derived and a fixed reference state,
//! and the inspection.
#![no_main]

use std::collections::BTreeMap;

use keylime_eventlog::{HashAlg, PreparedMbPolicy, check, inspect_json, refstate_from_log};
use libfuzzer_sys::fuzz_target;

/// A small valid reference state, so that logs without a derivable one still reach the
/// policy evaluation.
const FIXED_REFSTATE: &str = r#"{
  "has_secureboot": false,
  "scrtm_and_bios": [{"scrtm": {"sha256": "0x00"}, "platform_firmware": []}],
  "pk": [], "kek": [], "db": [], "dbx": [], "mokdig": [], "mokxdig": [],
  "kernels": [{"shim_authcode_sha256": "0x00", "grub_authcode_sha256": "0x00",
               "vmlinuz_plain_sha256": "0x00", "initrd_plain_sha256": "0x00",
               "kernel_cmdline": ".*"}]
}"#;

fuzz_target!(|data: &[u8]| {
    let _ = inspect_json(data);
    let quoted: BTreeMap<u8, Vec<u8>> = (0u8..24).map(|i| (i, vec![0; 32])).collect();
    let fixed: serde_json::Value = serde_json::from_str(FIXED_REFSTATE).expect("fixed refstate");
    let policy = PreparedMbPolicy::prepare("example", Some(&fixed)).expect("fixed refstate");
    let _ = check(data, HashAlg::Sha256, &quoted, &policy);
    for secure_boot in [true, false] {
        if let Ok(refstate) = refstate_from_log(data, secure_boot)
            && let Ok(policy) = PreparedMbPolicy::prepare("example", Some(&refstate))
        {
            let _ = check(data, HashAlg::Sha256, &quoted, &policy);
        }
    }
});
