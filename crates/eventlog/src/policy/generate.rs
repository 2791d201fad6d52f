//! `keylime-policy create measured-boot`: the `example` reference state a log implies,
//! derived field by field as upstream's generator does:
//!
//! * `has_secureboot`: the SecureBoot driver-config variable;
//! * `scrtm_and_bios`: the first `EV_S_CRTM_VERSION` digest and every platform firmware
//!   blob's digest, in order;
//! * `pk`, `kek`, `db`, `dbx`: the keys of the last driver-config event of each name;
//!   `vendor_db`: shim's authority events of that name;
//! * `mokdig`, `mokxdig`: the `EV_IPL` events measuring MokList / MokListX;
//! * `kernels`: the boot applications' Authenticode digests as logged (shim, grub, kernel;
//!   firmware-volume applications such as a boot menu skipped), the first PCR 9 initrd
//!   (and, without Secure Boot, vmlinuz) digest, and the first PCR 8 kernel command line
//!   escaped with Python's `re.escape`.
//!
//! Digests are the events' SHA-256 digests as `{"sha256": "0x.."}`. Where upstream would
//! emit a reference state its own policy cannot use (no S-CRTM event, an unexpected number
//! of boot applications, no initrd or command line, no SHA-256 bank) this is an error.

use serde_json::{Map, Value, json};

use crate::HashAlg;
use crate::event_type::EventType;
use crate::log::{Event, EventLog};
use crate::view::{Body, VarData};

use super::error::MbPolicyError;
use super::pattern::python_escape;

fn sha256(e: &Event) -> Option<String> {
    e.digests
        .iter()
        .find(|d| d.hash_alg() == Some(HashAlg::Sha256))
        .map(|d| format!("0x{}", hex::encode(&d.digest)))
}

fn digest_map(e: &Event) -> Result<Value, MbPolicyError> {
    sha256(e).map(|d| json!({ "sha256": d })).ok_or_else(|| {
        MbPolicyError::Underivable(format!("event {} has no sha256 digest", e.number))
    })
}

fn ipl_string(e: &Event) -> Option<String> {
    match e.view() {
        Body::Ipl(s) => Some(s),
        _ => None,
    }
}

fn keys_json<'a>(sigs: impl Iterator<Item = &'a crate::SignatureData>) -> Vec<Value> {
    sigs.map(|s| {
        json!({
            "SignatureOwner": s.owner.to_string(),
            "SignatureData": format!("0x{}", hex::encode(&s.data)),
        })
    })
    .collect()
}

fn secure_boot_enabled(log: &EventLog) -> Result<bool, MbPolicyError> {
    for e in &log.events {
        if e.event_type != EventType::EV_EFI_VARIABLE_DRIVER_CONFIG {
            continue;
        }
        if let Body::Variable(var) = e.view()
            && var.name == "SecureBoot"
        {
            return match var.data {
                VarData::Enabled(on) => Ok(on),
                _ => Err(MbPolicyError::Underivable(format!(
                    "event {}: the SecureBoot variable's value is malformed",
                    e.number
                ))),
            };
        }
    }
    tracing::warn!("SecureBoot state could not be determined; assuming disabled");
    Ok(false)
}

/// The reference state `log` implies. `secure_boot` false is `--without-secureboot`: it
/// is required for a log with Secure Boot disabled, and ignored (with a warning) for a log
/// with it enabled.
pub fn refstate_from_log(log: &[u8], secure_boot: bool) -> Result<Value, MbPolicyError> {
    let log = EventLog::parse(log)?;
    let has_secureboot = secure_boot_enabled(&log)?;
    if !has_secureboot && secure_boot {
        return Err(MbPolicyError::SecureBootDisabled);
    }
    if has_secureboot && !secure_boot {
        tracing::warn!(
            "--without-secureboot given, but the event log has Secure Boot enabled; ignoring it"
        );
    }

    let mut refstate = Map::new();
    refstate.insert("has_secureboot".into(), json!(has_secureboot));
    refstate.insert("scrtm_and_bios".into(), json!([scrtm_and_bios(&log)?]));
    for (name, keys) in key_databases(&log) {
        refstate.insert(name.into(), Value::Array(keys));
    }
    refstate.insert("vendor_db".into(), Value::Array(vendor_db(&log)));
    let (mokdig, mokxdig) = mok_digests(&log)?;
    refstate.insert("mokdig".into(), Value::Array(mokdig));
    refstate.insert("mokxdig".into(), Value::Array(mokxdig));
    refstate.insert("kernels".into(), json!([kernel(&log, has_secureboot)?]));
    Ok(Value::Object(refstate))
}

fn scrtm_and_bios(log: &EventLog) -> Result<Value, MbPolicyError> {
    let scrtm = log
        .events
        .iter()
        .find(|e| e.event_type == EventType::EV_S_CRTM_VERSION)
        .ok_or_else(|| {
            MbPolicyError::Underivable(
                "no EV_S_CRTM_VERSION event (the example policy requires exactly one)".into(),
            )
        })?;
    let firmware = log
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.event_type,
                EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB
                    | EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2
            )
        })
        .map(digest_map)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ "scrtm": digest_map(scrtm)?, "platform_firmware": firmware }))
}

/// PK, KEK, db, dbx from driver-config events (name compared case-insensitively, the last
/// event of a name wins, an empty variable leaves the list as it was).
fn key_databases(log: &EventLog) -> [(&'static str, Vec<Value>); 4] {
    let mut out = [
        ("pk", Vec::new()),
        ("kek", Vec::new()),
        ("db", Vec::new()),
        ("dbx", Vec::new()),
    ];
    for e in &log.events {
        if e.event_type != EventType::EV_EFI_VARIABLE_DRIVER_CONFIG {
            continue;
        }
        let Body::Variable(var) = e.view() else {
            continue;
        };
        let Some(slot) = out
            .iter_mut()
            .find(|(name, _)| var.name.eq_ignore_ascii_case(name))
        else {
            continue;
        };
        if let VarData::SignatureLists(Some(lists)) = &var.data {
            slot.1 = keys_json(lists.iter().flat_map(|l| l.signatures.iter()));
        }
    }
    out
}

fn vendor_db(log: &EventLog) -> Vec<Value> {
    let mut out = Vec::new();
    for e in &log.events {
        if e.event_type != EventType::EV_EFI_VARIABLE_AUTHORITY {
            continue;
        }
        if let Body::Variable(var) = e.view()
            && var.name.eq_ignore_ascii_case("vendor_db")
            && let VarData::Signatures(sigs) = &var.data
        {
            out.extend(keys_json(sigs.iter()));
        }
    }
    out
}

fn mok_digests(log: &EventLog) -> Result<(Vec<Value>, Vec<Value>), MbPolicyError> {
    let (mut mok, mut mokx) = (Vec::new(), Vec::new());
    for e in log
        .events
        .iter()
        .filter(|e| e.event_type == EventType::EV_IPL)
    {
        match ipl_string(e).as_deref() {
            Some("MokList") => mok.push(digest_map(e)?),
            Some("MokListX") => mokx.push(digest_map(e)?),
            _ => {}
        }
    }
    Ok((mok, mokx))
}

fn underivable(what: String) -> MbPolicyError {
    MbPolicyError::Underivable(what)
}

fn kernel(log: &EventLog, has_secureboot: bool) -> Result<Value, MbPolicyError> {
    let apps: Vec<&Event> = log
        .events
        .iter()
        .filter(|e| e.event_type == EventType::EV_EFI_BOOT_SERVICES_APPLICATION)
        .filter(|e| {
            !matches!(e.view(), Body::Image(img) if crate::device_path::is_firmware_volume_file(&img.raw_path))
        })
        .collect();
    let mut k = Map::new();
    if has_secureboot {
        if !matches!(apps.len(), 3 | 4) {
            return Err(underivable(format!(
                "expected 3 UEFI applications to be booted (shim, grub, Linux), the log has {}",
                apps.len()
            )));
        }
        k.insert("kernel_authcode_sha256".into(), json!(authcode(apps[2])?));
    } else if apps.len() != 2 {
        return Err(underivable(format!(
            "expected 2 UEFI applications to be booted (shim, grub), the log has {}",
            apps.len()
        )));
    }
    k.insert("shim_authcode_sha256".into(), json!(authcode(apps[0])?));
    k.insert("grub_authcode_sha256".into(), json!(authcode(apps[1])?));

    let pcr9 = |needles: &[&str]| {
        log.events.iter().find(|e| {
            e.event_type == EventType::EV_IPL
                && e.pcr == 9
                && ipl_string(e).is_some_and(|s| needles.iter().any(|n| s.contains(n)))
        })
    };
    let initrd = pcr9(&["initrd", "initramfs"])
        .ok_or_else(|| underivable("no initrd or initramfs EV_IPL event on PCR 9".into()))?;
    k.insert("initrd_plain_sha256".into(), json!(authcode(initrd)?));
    if !has_secureboot {
        let vmlinuz = pcr9(&["vmlinuz"])
            .ok_or_else(|| underivable("no vmlinuz EV_IPL event on PCR 9".into()))?;
        k.insert("vmlinuz_plain_sha256".into(), json!(authcode(vmlinuz)?));
    }
    let cmdline = log
        .events
        .iter()
        .filter(|e| e.event_type == EventType::EV_IPL && e.pcr == 8)
        .filter_map(ipl_string)
        .find(|s| s.contains("kernel_cmdline"))
        .ok_or_else(|| underivable("no kernel_cmdline EV_IPL event on PCR 8".into()))?;
    let args: String = cmdline.chars().skip("kernel_cmdline: ".len()).collect();
    k.insert("kernel_cmdline".into(), json!(python_escape(&args)));
    Ok(Value::Object(k))
}

fn authcode(e: &Event) -> Result<String, MbPolicyError> {
    sha256(e).ok_or_else(|| underivable(format!("event {} has no sha256 digest", e.number)))
}
