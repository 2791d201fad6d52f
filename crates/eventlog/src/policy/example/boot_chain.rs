//! The `example` policy's final checks over what the walk collected: one `kernels` entry
//! must match the boot applications (shim, grub, kernel), the initrd and vmlinuz grub read
//! and the kernel command line; one `scrtm_and_bios` entry the S-CRTM version and the
//! platform firmware blobs, in order.

use crate::HashAlg;
use crate::log::Event;

use super::collected::{Collected, digest_matches};
use crate::policy::refstate::{ExampleRefState, Kernel};
use crate::policy::violation::Violation;

fn sha256_hex(e: &Event) -> Option<String> {
    e.digests
        .iter()
        .find(|d| d.hash_alg() == Some(HashAlg::Sha256))
        .map(|d| hex::encode(&d.digest))
}

/// `events` are exactly `expected` (reference-state field name, value), in order.
fn sequence(
    what: &str,
    events: &[&Event],
    expected: &[(&str, &str)],
    kernel: usize,
) -> Result<(), Violation> {
    if events.len() != expected.len() {
        return Err(Violation::new(format!(
            "{what}: the log has {} such events, kernels[{kernel}] expects {}",
            events.len(),
            expected.len()
        )));
    }
    for (i, (e, (field, want))) in events.iter().zip(expected).enumerate() {
        let got = sha256_hex(e);
        if got.as_deref() != Some(*want) {
            return Err(Violation::new(format!(
                "{what} {i} (event {}) has sha256 {}, not kernels[{kernel}].{field} 0x{want}",
                e.number,
                got.map_or_else(|| "none".to_string(), |g| format!("0x{g}")),
            ))
            .event_and_component(e.number, format!("kernels[{kernel}].{field}")));
        }
    }
    Ok(())
}

impl Violation {
    fn event_and_component(self, event: usize, component: String) -> Self {
        self.at_event(event).component(component)
    }
}

fn kernel_matches(
    rs: &ExampleRefState,
    seen: &Collected<'_>,
    i: usize,
    k: &Kernel,
) -> Result<(), Violation> {
    let apps = "boot application (PCR 4)";
    if let Some(kernel) = &k.kernel {
        let three = [
            ("shim_authcode_sha256", k.shim.as_str()),
            ("grub_authcode_sha256", k.grub.as_str()),
            ("kernel_authcode_sha256", kernel.as_str()),
        ];
        let four = [three[0], three[1], three[2], three[2]];
        // The kernel is measured twice in some setups (shim and grub both verify it).
        let expected: &[(&str, &str)] = if seen.boot_apps.len() == 4 {
            &four
        } else {
            &three
        };
        sequence(apps, &seen.boot_apps, expected, i)?;
    } else {
        let two = [
            ("shim_authcode_sha256", k.shim.as_str()),
            ("grub_authcode_sha256", k.grub.as_str()),
        ];
        sequence(apps, &seen.boot_apps, &two, i)?;
    }
    sequence(
        "initrd (PCR 9)",
        &seen.initrds,
        &[("initrd_plain_sha256", k.initrd.as_str())],
        i,
    )?;
    match (&k.vmlinuz, rs.has_secureboot) {
        (Some(vmlinuz), false) => sequence(
            "vmlinuz (PCR 9)",
            &seen.vmlinuz,
            &[("vmlinuz_plain_sha256", vmlinuz.as_str())],
            i,
        )?,
        _ if seen.vmlinuz.len() != 1 => {
            return Err(Violation::new(format!(
                "vmlinuz (PCR 9): the log has {} such events, the policy expects 1",
                seen.vmlinuz.len()
            )));
        }
        _ => {}
    }
    match seen.cmdlines.as_slice() {
        [(_, text)] if k.cmdline.is_match(text) => Ok(()),
        [(e, text)] => Err(Violation::new(format!(
            "kernel command line {:?} (event {}) does not match kernels[{i}].kernel_cmdline",
            text.chars().take(200).collect::<String>(),
            e.number
        ))
        .event_and_component(e.number, format!("kernels[{i}].kernel_cmdline"))),
        other => Err(Violation::new(format!(
            "kernel_cmdline (PCR 8): the log has {} such events, the policy expects 1",
            other.len()
        ))),
    }
}

/// One `kernels` entry must match the collected boot applications, initrd, vmlinuz and
/// command line.
pub(super) fn kernels(rs: &ExampleRefState, seen: &Collected<'_>) -> Result<(), Violation> {
    let mut failures = Vec::new();
    for (i, k) in rs.kernels.iter().enumerate() {
        match kernel_matches(rs, seen, i, k) {
            Ok(()) => return Ok(()),
            Err(v) => failures.push(v),
        }
    }
    match failures.len() {
        0 => Err(Violation::new("the reference state lists no kernels").component("kernels")),
        1 => Err(failures.remove(0)),
        _ => Err(Violation::new(format!(
            "no kernels entry matches: [{}]",
            failures
                .iter()
                .map(|v| v.reason.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ))
        .component("kernels")),
    }
}

pub(super) fn scrtm_and_bios(rs: &ExampleRefState, seen: &Collected<'_>) -> Result<(), Violation> {
    let mut failures = Vec::new();
    for (i, entry) in rs.scrtm_and_bios.iter().enumerate() {
        let at = format!("scrtm_and_bios[{i}]");
        let result = match seen.s_crtms.as_slice() {
            [e] if digest_matches(e, &entry.scrtm) => {
                if seen.firmware_blobs.len() != entry.platform_firmware.len() {
                    Err(Violation::new(format!(
                        "the log has {} platform firmware blobs (PCR 0), {at}.platform_firmware lists {}",
                        seen.firmware_blobs.len(),
                        entry.platform_firmware.len()
                    ))
                    .component(format!("{at}.platform_firmware")))
                } else {
                    match seen
                        .firmware_blobs
                        .iter()
                        .zip(&entry.platform_firmware)
                        .position(|(e, d)| !digest_matches(e, d))
                    {
                        None => Ok(()),
                        Some(j) => Err(Violation::new(format!(
                            "platform firmware blob {j} (event {}) does not match {at}.platform_firmware[{j}]",
                            seen.firmware_blobs[j].number
                        ))
                        .event_and_component(
                            seen.firmware_blobs[j].number,
                            format!("{at}.platform_firmware[{j}]"),
                        )),
                    }
                }
            }
            [e] => Err(Violation::new(format!(
                "S-CRTM version (event {}) does not match {at}.scrtm",
                e.number
            ))
            .event_and_component(e.number, format!("{at}.scrtm"))),
            other => Err(Violation::new(format!(
                "the log has {} EV_S_CRTM_VERSION events on PCR 0, the policy expects 1",
                other.len()
            ))),
        };
        match result {
            Ok(()) => return Ok(()),
            Err(v) => failures.push(v),
        }
    }
    match failures.len() {
        0 => Err(
            Violation::new("the reference state lists no scrtm_and_bios entry")
                .component("scrtm_and_bios"),
        ),
        1 => Err(failures.remove(0)),
        _ => Err(Violation::new(format!(
            "no scrtm_and_bios entry matches: [{}]",
            failures
                .iter()
                .map(|v| v.reason.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ))
        .component("scrtm_and_bios")),
    }
}
