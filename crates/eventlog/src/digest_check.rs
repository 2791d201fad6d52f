//! Whether an event's digests are the hash of its own data, for the events where the data
//! is what was measured. A mismatch is recorded on the event ([`DigestCheck::Mismatch`]),
//! never a parse error: the log still replays, and the policy decides what it means.
//!
//! What counts as "the data" depends on who measured it:
//! * firmware events whose digest is defined over the whole event data (separators,
//!   actions, S-CRTM version, driver-config and authority variables, GPT);
//! * `EV_EFI_VARIABLE_BOOT`/`BOOT2`: the whole `UEFI_VARIABLE_DATA`, or only its
//!   `VariableData` (what EDK2 and many vendors hash);
//! * `EV_IPL` on PCR 8: grub hashes the text after its `grub_cmd: ` / `kernel_cmdline: `
//!   prefix (with or without the trailing NUL); systemd-boot hashes the whole string;
//! * `EV_IPL` on PCR 12: systemd-boot ≥ 251 hashes the whole data.
//!
//! `EV_IPL` on PCR 9 and 14 (files, MOK lists) and image loads hash something outside the
//! log, so there is nothing to check.

use crate::efi::EfiVariable;
use crate::event_type::EventType;
use crate::log::{DigestCheck, EventDigest};

/// Check `digests` of an event of type `ty` extending `pcr` against `data`.
pub(crate) fn check(ty: EventType, pcr: u32, digests: &[EventDigest], data: &[u8]) -> DigestCheck {
    match ty {
        t if t.digest_covers_data() => against(digests, &[data]),
        EventType::EV_EFI_VARIABLE_BOOT | EventType::EV_EFI_VARIABLE_BOOT2 => {
            match EfiVariable::decode(data) {
                Ok(var) => against(digests, &[data, &var.data]),
                Err(_) => against(digests, &[data]),
            }
        }
        EventType::EV_IPL if pcr == 8 => {
            let mut candidates = vec![data, trim_nuls(data)];
            if let Some(space) = data.iter().position(|b| *b == b' ') {
                let tail = data.get(space + 1..).unwrap_or(&[]);
                candidates.push(tail);
                candidates.push(trim_nuls(tail));
            }
            against(digests, &candidates)
        }
        EventType::EV_IPL if pcr == 12 => against(digests, &[data]),
        _ => DigestCheck::NotApplicable,
    }
}

fn trim_nuls(data: &[u8]) -> &[u8] {
    let end = data.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    data.get(..end).unwrap_or(data)
}

/// `Matches` if one candidate hashes to every digest of a known algorithm.
fn against(digests: &[EventDigest], candidates: &[&[u8]]) -> DigestCheck {
    let known: Vec<_> = digests
        .iter()
        .filter_map(|d| d.hash_alg().map(|alg| (alg, d.digest.as_slice())))
        .collect();
    if known.is_empty() {
        return DigestCheck::NotApplicable;
    }
    let matches = |candidate: &&[u8]| {
        known
            .iter()
            .all(|(alg, digest)| alg.digest(candidate) == *digest)
    };
    if candidates.iter().any(matches) {
        DigestCheck::Matches
    } else {
        DigestCheck::Mismatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keylime_tpm::alg::HashAlg;

    fn sha256(data: &[u8]) -> Vec<EventDigest> {
        vec![EventDigest {
            alg_id: HashAlg::Sha256.tpm_id(),
            digest: HashAlg::Sha256.digest(data),
        }]
    }

    #[test]
    fn grub_command_is_hashed_without_its_prefix() {
        let data = b"grub_cmd: linux /vmlinuz root=/dev/sda1\0";
        let d = sha256(b"linux /vmlinuz root=/dev/sda1");
        assert_eq!(check(EventType::EV_IPL, 8, &d, data), DigestCheck::Matches);
        let d = sha256(b"linux /vmlinuz root=/dev/sda2");
        assert_eq!(check(EventType::EV_IPL, 8, &d, data), DigestCheck::Mismatch);
        // The same event on PCR 9 measures a file: nothing to check.
        assert_eq!(
            check(EventType::EV_IPL, 9, &d, data),
            DigestCheck::NotApplicable
        );
    }

    #[test]
    fn pcr12_command_line_is_hashed_whole() {
        let data = "quiet splash\0".encode_utf16().flat_map(u16::to_le_bytes);
        let data: Vec<u8> = data.collect();
        assert_eq!(
            check(EventType::EV_IPL, 12, &sha256(&data), &data),
            DigestCheck::Matches
        );
        assert_eq!(
            check(EventType::EV_IPL, 12, &sha256(b"other"), &data),
            DigestCheck::Mismatch
        );
    }

    #[test]
    fn unknown_algorithms_leave_nothing_to_check() {
        let d = vec![EventDigest {
            alg_id: 0x00FE,
            digest: vec![0; 8],
        }];
        assert_eq!(
            check(EventType::EV_SEPARATOR, 0, &d, &[0; 4]),
            DigestCheck::NotApplicable
        );
    }
}
