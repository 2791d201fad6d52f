//! Text form of UEFI device paths (`EFI_DEVICE_PATH_PROTOCOL` node chains), in the
//! notation libefivar prints and upstream Keylime's log enrichment stores, e.g.
//! `PciRoot(0x0)/Pci(0x3,0x0)/SCSI(1,0)/HD(15,GPT,<guid>,0x2800,0x35000)/File(\EFI\ubuntu\shimx64.efi)`
//! or `FvVol(<guid>)/FvFile(<guid>)` for firmware-volume applications.
//!
//! Only the node types boot logs carry are named; any other node prints as
//! `Path(type,subtype,hex)`. A malformed chain (a node length below 4 or past the end)
//! gives `None`, and callers show the raw bytes instead, as upstream does.

use std::fmt::Write as _;

use crate::efi::{Guid, utf16le};
use crate::reader::Reader;

/// Format the device path `bytes`; `None` if a node length is inconsistent.
pub fn format_device_path(bytes: &[u8]) -> Option<String> {
    let mut out = String::new();
    let mut rest = bytes;
    let mut first = true;
    let mut ended = false;
    while rest.len() >= 4 {
        let (ty, sub) = (rest[0], rest[1]);
        let len = usize::from(u16::from_le_bytes([rest[2], rest[3]]));
        if len < 4 || len > rest.len() {
            return None;
        }
        let body = rest.get(4..len).unwrap_or(&[]);
        rest = rest.get(len..).unwrap_or(&[]);
        match (ty, sub) {
            (0x7f, 0xff) => {
                ended = true;
                break;
            }
            (0x7f, 0x01) => {
                out.push(',');
                first = true;
                continue;
            }
            _ => {}
        }
        if !first {
            out.push('/');
        }
        first = false;
        out.push_str(&node(ty, sub, body));
    }
    // Bytes after the end node (a boot option's optional data) are not part of the path.
    if !ended && !rest.is_empty() {
        return None;
    }
    Some(out)
}

fn guid_at(body: &[u8], at: usize) -> Option<Guid> {
    let b: [u8; 16] = body.get(at..at + 16)?.try_into().ok()?;
    Some(Guid(b))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn node(ty: u8, sub: u8, body: &[u8]) -> String {
    named(ty, sub, body).unwrap_or_else(|| format!("Path({ty},{sub},{})", hex(body)))
}

/// The named form of a node, `None` when the type is not one we name or its body is short.
fn named(ty: u8, sub: u8, body: &[u8]) -> Option<String> {
    let mut r = Reader::new(body);
    Some(match (ty, sub) {
        // Hardware
        (1, 1) => {
            let function = r.u8("function").ok()?;
            let device = r.u8("device").ok()?;
            format!("Pci({device:#x},{function:#x})")
        }
        (1, 3) => {
            let mem_type = r.u32("type").ok()?;
            let start = r.u64("start").ok()?;
            let end = r.u64("end").ok()?;
            format!("MemoryMapped({mem_type},{start:#x},{end:#x})")
        }
        (1, 4) => vendor("VenHw", body)?,
        (1, 5) => format!("Ctrl({:#x})", r.u32("controller").ok()?),
        // ACPI
        (2, 1) => {
            let hid = r.u32("HID").ok()?;
            let uid = r.u32("UID").ok()?;
            match hid {
                0x0a03_41d0 => format!("PciRoot({uid:#x})"),
                0x0a08_41d0 => format!("PcieRoot({uid:#x})"),
                h if h & 0xffff == 0x41d0 => format!("Acpi(PNP{:04X},{uid:#x})", h >> 16),
                h => format!("Acpi({h:#010x},{uid:#x})"),
            }
        }
        (2, 3) => format!("AcpiAdr({:#x})", r.u32("ADR").ok()?),
        // Messaging
        (3, 1) => {
            let primary = r.u8("primary").ok()?;
            let slave = r.u8("slave").ok()?;
            let lun = r.u16("lun").ok()?;
            format!("Ata({primary},{slave},{lun})")
        }
        (3, 2) => {
            let pun = r.u16("pun").ok()?;
            let lun = r.u16("lun").ok()?;
            format!("SCSI({pun},{lun})")
        }
        (3, 5) => {
            let port = r.u8("port").ok()?;
            let interface = r.u8("interface").ok()?;
            format!("USB({port},{interface})")
        }
        (3, 10) => vendor("VenMsg", body)?,
        (3, 11) => {
            let mac = body.get(..6)?;
            let if_type = body.get(32).copied().unwrap_or(0);
            format!("MAC({},{if_type:#x})", hex(mac))
        }
        (3, 12) => {
            let ip = body.get(4..8)?;
            format!("IPv4({}.{}.{}.{})", ip[0], ip[1], ip[2], ip[3])
        }
        (3, 18) => {
            let hba = r.u16("hba").ok()?;
            let pm = r.u16("port multiplier").ok()?;
            let lun = r.u16("lun").ok()?;
            format!("Sata({hba},{pm},{lun})")
        }
        (3, 23) => {
            let nsid = r.u32("namespace").ok()?;
            let eui = body.get(4..12)?;
            let eui: Vec<String> = eui.iter().map(|b| format!("{b:02X}")).collect();
            format!("NVMe({nsid:#x},{})", eui.join("-"))
        }
        (3, 24) => format!("Uri({})", String::from_utf8_lossy(body)),
        // Media
        (4, 1) => {
            let part = r.u32("partition").ok()?;
            let start = r.u64("start").ok()?;
            let size = r.u64("size").ok()?;
            let sig = r.array::<16>("signature").ok()?;
            let format = r.u8("format").ok()?;
            let sig_type = r.u8("signature type").ok()?;
            match (format, sig_type) {
                (2, 2) => format!("HD({part},GPT,{},{start:#x},{size:#x})", Guid(sig)),
                (1, 1) => {
                    let mbr = u32::from_le_bytes([sig[0], sig[1], sig[2], sig[3]]);
                    format!("HD({part},MBR,{mbr:#010x},{start:#x},{size:#x})")
                }
                _ => format!("HD({part},{format},{sig_type},{start:#x},{size:#x})"),
            }
        }
        (4, 2) => {
            let entry = r.u32("boot entry").ok()?;
            let start = r.u64("start").ok()?;
            let size = r.u64("size").ok()?;
            format!("CDROM({entry},{start:#x},{size:#x})")
        }
        (4, 3) => vendor("VenMedia", body)?,
        (4, 4) => format!("File({})", utf16le(body)),
        (4, 5) => format!("Media({})", guid_at(body, 0)?),
        (4, 6) => format!("FvFile({})", guid_at(body, 0)?),
        (4, 7) => format!("FvVol({})", guid_at(body, 0)?),
        (4, 8) => {
            let _reserved = r.u32("reserved").ok()?;
            let start = r.u64("start").ok()?;
            let end = r.u64("end").ok()?;
            format!("Offset({start:#x},{end:#x})")
        }
        // BIOS boot specification
        (5, 1) => {
            let device_type = r.u16("device type").ok()?;
            let status = r.u16("status").ok()?;
            let desc = String::from_utf8_lossy(r.rest());
            let desc = desc.trim_end_matches('\0');
            let kind = match device_type {
                1 => "Floppy".to_string(),
                2 => "HD".to_string(),
                3 => "CDROM".to_string(),
                4 => "PCMCIA".to_string(),
                5 => "USB".to_string(),
                6 => "Network".to_string(),
                other => format!("{other:#x}"),
            };
            format!("BBS({kind},{desc},{status:#x})")
        }
        _ => return None,
    })
}

fn vendor(name: &str, body: &[u8]) -> Option<String> {
    let guid = guid_at(body, 0)?;
    let data = body.get(16..).unwrap_or(&[]);
    Some(if data.is_empty() {
        format!("{name}({guid})")
    } else {
        format!("{name}({guid},{})", hex(data))
    })
}

/// Does the path start with a firmware-volume file (`FvVol(..)/FvFile(..)`): an
/// application built into the firmware (boot menu, shell) rather than one loaded from disk.
pub(crate) fn is_firmware_volume_file(bytes: &[u8]) -> bool {
    matches!(
        bytes,
        [4, 7, 20, 0, rest @ ..] if matches!(rest.get(16..20), Some([4, 6, 20, 0]))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hexbytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn firmware_volume_application() {
        let b = hexbytes(
            "04071400c9bdb87cebf8344faaea3ee4af6516a10406140021aa2c4614760345836e8ab6f46623317fff0400",
        );
        assert_eq!(
            format_device_path(&b).as_deref(),
            Some(
                "FvVol(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(462caa21-7614-4503-836e-8ab6f4662331)"
            )
        );
        assert!(is_firmware_volume_file(&b));
    }

    #[test]
    fn pci_root_and_offset() {
        let b = hexbytes("02010c00d041030a000000000101060001020101060000007fff0400");
        assert_eq!(
            format_device_path(&b).as_deref(),
            Some("PciRoot(0x0)/Pci(0x2,0x1)/Pci(0x0,0x0)")
        );
        assert!(!is_firmware_volume_file(&b));
    }

    #[test]
    fn malformed_lengths_give_none() {
        assert_eq!(format_device_path(&[4, 4, 2, 0]), None);
        assert_eq!(format_device_path(&[4, 4, 0xff, 0xff, 0]), None);
        assert_eq!(format_device_path(&[]).as_deref(), Some(""));
        // Short bodies fall back to the generic form.
        assert_eq!(
            format_device_path(&[1, 1, 5, 0, 9]).as_deref(),
            Some("Path(1,1,09)")
        );
    }
}
