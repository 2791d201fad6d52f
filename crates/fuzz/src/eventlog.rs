//! UEFI event logs: parse, replay and decoders; the measured-boot check as the verifier runs
//! it; measured-boot reference states.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use keylime_eventlog::{
    EventData, EventLog, HashAlg, PreparedMbPolicy, check, inspect_json, inspect_text,
    refstate_from_log, replay,
};

/// The parser, the replay into every bank and every event decoder.
pub fn parse(data: &[u8]) {
    if let Ok(log) = EventLog::parse(data) {
        let _ = replay(&log);
        for event in &log.events {
            if let Ok(EventData::Variable(v)) = event.decode() {
                let _ = v.signature_lists();
            }
        }
    }
}

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

fn fixed_policy() -> &'static PreparedMbPolicy {
    static P: OnceLock<PreparedMbPolicy> = OnceLock::new();
    P.get_or_init(|| {
        let refstate: serde_json::Value =
            serde_json::from_str(FIXED_REFSTATE).expect("fixed refstate");
        PreparedMbPolicy::prepare("example", Some(&refstate)).expect("fixed refstate")
    })
}

/// The measured-boot path a verifier runs on an agent's log: inspection (text and JSON),
/// the check under a fixed reference state with the PCRs the log replays to (so the policy
/// is reached) and with zeros, and reference-state derivation with the check under it.
pub fn mb_check(data: &[u8]) {
    let _ = inspect_json(data);
    let _ = inspect_text(data);
    let zeros: BTreeMap<u8, Vec<u8>> = (0u8..24).map(|i| (i, vec![0; 32])).collect();
    let _ = check(data, HashAlg::Sha256, &zeros, fixed_policy());
    let Ok(log) = EventLog::parse(data) else {
        return;
    };
    let replayed: BTreeMap<u8, Vec<u8>> = replay(&log)
        .get(&HashAlg::Sha256)
        .map(|bank| {
            bank.iter()
                .filter_map(|(&i, v)| Some((u8::try_from(i).ok()?, v.clone())))
                .collect()
        })
        .unwrap_or_default();
    let _ = check(data, HashAlg::Sha256, &replayed, fixed_policy());
    for secure_boot in [true, false] {
        if let Ok(refstate) = refstate_from_log(data, secure_boot)
            && let Ok(policy) = PreparedMbPolicy::prepare("example", Some(&refstate))
        {
            let _ = check(data, HashAlg::Sha256, &replayed, &policy);
        }
    }
}

/// Reference-state validation: any JSON document, under every built-in policy.
pub fn refstate(data: &[u8]) {
    if let Ok(refstate) = serde_json::from_slice::<serde_json::Value>(data) {
        for name in ["example", "accept-all", "reject-all"] {
            let _ = PreparedMbPolicy::prepare(name, Some(&refstate));
        }
    }
}
