//! Evaluation of upstream's built-in `example` measured-boot policy
//! (keylime/keylime `keylime/mba/elchecking/example.py`, PROTOCOL.md §8.4).
//!
//! Every event of the log, in order, must be allowed by the rule for its (PCR, event type)
//! pair; the first one that is not rejects the log. Events the final checks need (S-CRTM
//! version, firmware blobs, boot applications, initrd/vmlinuz, kernel command line) are
//! collected on the way, then one `kernels` entry and one `scrtm_and_bios` entry must
//! match them. Rules that upstream runs once (PK, KEK, db, dbx, ...) reject a second
//! occurrence.
//!
//! Two behaviours follow upstream's observable results rather than its source text:
//! separators must be `00000000` (tpm2-tools prints lowercase hex, so upstream's
//! `FFFFFFFF` alternative never matches), and variables are keyed by their canonical GUID.
//! One is stricter than upstream: an event whose data the policy reads (PCR 7 variables,
//! PCR 8 command lines) must have digests that match that data, otherwise the data is not
//! what was measured into the quoted PCR and is not believed.

mod boot_chain;
mod collected;
mod variables;

use crate::event_type::EventType;
use crate::log::{Event, EventLog};
use crate::view::Body;

use super::refstate::{Digest, ExampleRefState};
use super::violation::Violation;
use boot_chain::{kernels, scrtm_and_bios};
use collected::{Collected, Once, digest_matches, measured_data};
use variables::{authority, boot_variable, driver_config};

/// Evaluate `log` against the compiled reference state.
pub(crate) fn evaluate(rs: &ExampleRefState, log: &EventLog) -> Result<(), Violation> {
    let mut seen = Collected::default();
    for e in &log.events {
        allow_event(rs, e, &mut seen).map_err(|v| {
            let name = e
                .event_type
                .name()
                .map_or_else(|| format!("{:#x}", e.event_type.0), str::to_string);
            Violation {
                reason: format!("event {} (PCR {}, {name}) {}", e.number, e.pcr, v.reason),
                event: Some(e.number),
                component: v.component,
            }
        })?;
    }
    kernels(rs, &seen)?;
    scrtm_and_bios(rs, &seen)
}

fn allow_event<'l>(
    rs: &ExampleRefState,
    e: &'l Event,
    seen: &mut Collected<'l>,
) -> Result<(), Violation> {
    use EventType as T;
    match (e.pcr, e.event_type) {
        (0, T::EV_NO_ACTION) => seen.once(Once::NoAction),
        (1, T::EV_CPU_MICROCODE) => seen.once(Once::Microcode),
        (1, T::EV_EFI_HANDOFF_TABLES) => seen.once(Once::HandoffTables),
        (1, T::EV_EFI_HANDOFF_TABLES2) => seen.once(Once::HandoffTables2),
        (0, T::EV_S_CRTM_VERSION) => {
            seen.s_crtms.push(e);
            Ok(())
        }
        (0, T::EV_EFI_PLATFORM_FIRMWARE_BLOB | T::EV_EFI_PLATFORM_FIRMWARE_BLOB2) => {
            seen.firmware_blobs.push(e);
            Ok(())
        }
        (7, T::EV_EFI_VARIABLE_DRIVER_CONFIG) => driver_config(rs, e, seen),
        (7, T::EV_EFI_VARIABLE_AUTHORITY) => authority(rs, e, seen),
        (2, T::EV_EFI_BOOT_SERVICES_DRIVER) => Ok(()),
        (1, T::EV_EFI_VARIABLE_BOOT) => boot_variable(e),
        (1, T::EV_PLATFORM_CONFIG_FLAGS) => {
            // EDK2 measures up to four of these.
            seen.config_flags += 1;
            if seen.config_flags > 4 {
                return Err(Violation::new(
                    "is the fifth EV_PLATFORM_CONFIG_FLAGS event (at most four are allowed)",
                ));
            }
            Ok(())
        }
        (1 | 4 | 5, T::EV_EFI_ACTION) => efi_action(e),
        (0..=7, T::EV_SEPARATOR) => separator(e),
        (4, T::EV_EFI_BOOT_SERVICES_APPLICATION) => {
            seen.boot_apps.push(e);
            Ok(())
        }
        (14, T::EV_IPL) => mok(rs, e, seen),
        (9, T::EV_IPL) => loaded_file(e, seen),
        (8, T::EV_IPL) => command(e, seen),
        (5, T::EV_EFI_GPT_EVENT) => seen.once(Once::Gpt),
        _ => Err(Violation::new(
            "has an unexpected (PCRIndex, EventType) combination",
        )),
    }
}

/// Some digest of a known algorithm equals the hash of `data`.
fn digest_of(e: &Event, data: &[u8]) -> bool {
    e.digests
        .iter()
        .any(|d| d.hash_alg().is_some_and(|alg| alg.digest(data) == d.digest))
}

fn efi_action(e: &Event) -> Result<(), Violation> {
    let allowed: &[&str] = match e.pcr {
        1 => &["Entering ROM Based Setup"],
        4 => &[
            "Calling EFI Application from Boot Option",
            "Returning from EFI Application from Boot Option",
        ],
        _ => &[
            "Exit Boot Services Invocation",
            "Exit Boot Services Returned with Failure",
            "Exit Boot Services Returned with Success",
        ],
    };
    let Body::Text(text) = e.view() else {
        return Err(Violation::new("has no action string"));
    };
    match allowed.iter().find(|a| **a == text) {
        Some(a) if digest_of(e, a.as_bytes()) => Ok(()),
        Some(_) => Err(Violation::new(format!(
            "has no digest of the action string {text:?}"
        ))),
        None => Err(Violation::new(format!(
            "action {text:?} is not one of {allowed:?}"
        ))),
    }
}

fn separator(e: &Event) -> Result<(), Violation> {
    if e.data != [0, 0, 0, 0] {
        return Err(Violation::new(format!(
            "separator value {} is not 00000000",
            hex::encode(&e.data)
        )));
    }
    if !digest_of(e, &e.data) {
        return Err(Violation::new("has no digest of the separator value"));
    }
    Ok(())
}

fn ipl_string(e: &Event) -> Result<String, Violation> {
    match e.view() {
        Body::Ipl(s) => Ok(s),
        _ => Err(Violation::new("has no Event field")),
    }
}

/// One of the approved digests is among the event's digests.
fn digest_in(e: &Event, approved: &[Digest]) -> bool {
    approved.iter().any(|d| digest_matches(e, d))
}

fn mok<'l>(rs: &ExampleRefState, e: &'l Event, seen: &mut Collected<'l>) -> Result<(), Violation> {
    let name = ipl_string(e)?;
    match name.as_str() {
        "MokList" if digest_in(e, &rs.mokdig) => Ok(()),
        "MokList" => Err(Violation::new("MokList digest is not in mokdig").component("mokdig")),
        "MokListX" if digest_in(e, &rs.mokxdig) => Ok(()),
        "MokListX" => Err(Violation::new("MokListX digest is not in mokxdig").component("mokxdig")),
        "MokListTrusted" => seen.once(Once::IplMokListTrusted),
        other => Err(Violation::new(format!(
            "String {other:?} is not MokList, MokListX or MokListTrusted"
        ))),
    }
}

/// PCR 9: files grub read. Boot-loader entries and grub files are accepted, the kernel
/// and initrd are collected for the `kernels` check.
fn loaded_file<'l>(e: &'l Event, seen: &mut Collected<'l>) -> Result<(), Violation> {
    let path = ipl_string(e)?;
    // Python's `.*x.*` full match: contains x, and `.` never matches a newline.
    let single_line = !path.contains('\n');
    if single_line && (path.contains("/loader/entries") || path.contains("/grub")) {
        Ok(())
    } else if single_line && path.contains("/vmlinuz") {
        seen.vmlinuz.push(e);
        Ok(())
    } else if single_line && (path.contains("/initrd") || path.contains("/initramfs")) {
        seen.initrds.push(e);
        Ok(())
    } else {
        Err(Violation::new(format!(
            "String {path:?} is not a boot loader entry, grub file, vmlinuz or initrd"
        )))
    }
}

/// PCR 8: grub commands are accepted, the kernel command line is collected.
fn command<'l>(e: &'l Event, seen: &mut Collected<'l>) -> Result<(), Violation> {
    measured_data(e)?;
    let text = ipl_string(e)?;
    if text.starts_with("grub_cmd: ") {
        Ok(())
    } else if text.starts_with("kernel_cmdline: ") && !text.contains('\n') {
        seen.cmdlines.push((e, text));
        Ok(())
    } else {
        Err(Violation::new(format!(
            "String {:?} is neither a grub_cmd nor a kernel_cmdline",
            text.chars().take(120).collect::<String>()
        )))
    }
}
