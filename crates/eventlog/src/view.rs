//! Events as `tpm2_eventlog --eventlog-version=2` presents them, after upstream Keylime's
//! enrichment (device paths as text, boot options decoded, shim's `vendor_db` split into
//! signatures): the shape upstream's measured-boot policies and `keylime-policy` read.
//!
//! Which variables get a structured `VariableData` depends on the event type and the
//! variable's name only, as in tpm2-tools: PK/KEK/db/dbx signature lists and SecureBoot in
//! driver-config events; MokListTrusted, db, Shim, SbatLevel and vendor_db in authority
//! events; BootOrder and Boot#### in boot events; anything else is raw bytes. Data that
//! tpm2-tools would refuse (a two-byte SecureBoot, an odd BootOrder) is `Malformed`.

use crate::device_path::format_device_path;
use crate::efi::{EfiVariable, Guid, SignatureData, SignatureList, utf16le};
use crate::event_type::EventType;
use crate::log::{Event, SPEC_ID_SIGNATURE, STARTUP_LOCALITY_SIGNATURE};
use crate::reader::Reader;

/// An event's data as tpm2-tools decodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body<'a> {
    /// `EventSize` 0: the event has no `Event` field.
    Empty,
    /// The crypto-agile header.
    SpecId,
    StartupLocality(u8),
    /// Printed as a hex string (separators, S-CRTM version, tables, unknown types).
    Hex(&'a [u8]),
    /// `EV_EFI_ACTION`, `EV_POST_CODE` strings, `EV_EFI_HCRTM_EVENT`.
    Text(String),
    /// `EV_IPL`: `{String: ...}`.
    Ipl(String),
    Blob {
        base: u64,
        length: u64,
    },
    Blob2 {
        description: &'a [u8],
        base: u64,
        length: u64,
    },
    Image(ImageView),
    Variable(VariableView<'a>),
    Gpt(GptView),
    /// Data tpm2-tools cannot decode for this type.
    Malformed(String),
}

/// `UEFI_IMAGE_LOAD_EVENT` with its device path as text (hex when it does not parse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageView {
    pub location: u64,
    pub length: u64,
    pub link_time_address: u64,
    pub path_length: u64,
    pub device_path: String,
    pub raw_path: Vec<u8>,
}

/// A measured UEFI variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VariableView<'a> {
    pub guid: Guid,
    pub name: String,
    pub name_length: u64,
    pub data_length: u64,
    pub data: VarData<'a>,
}

/// `VariableData` of a variable event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VarData<'a> {
    /// Zero-length data of an undecoded variable: no `VariableData` field.
    Absent,
    Hex(&'a [u8]),
    /// SecureBoot, MokListTrusted: `{Enabled: Yes|No}`.
    Enabled(bool),
    /// PK, KEK, db, dbx; `None` when there is no list at all (printed as null).
    SignatureLists(Option<Vec<SignatureList>>),
    /// Authority db/Shim (one signature) and shim's vendor_db (split on certificates).
    Signatures(Vec<SignatureData>),
    /// SbatLevel: `{String: ...}`.
    Text(String),
    BootOrder(Vec<u16>),
    BootOption {
        enabled: bool,
        file_path_list_length: u16,
        description: String,
        device_path: String,
    },
    Malformed(String),
}

/// `UEFI_GPT_DATA`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GptView {
    pub signature: String,
    pub revision: u32,
    pub header_size: u32,
    pub header_crc32: u32,
    pub my_lba: u64,
    pub alternate_lba: u64,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    pub disk_guid: Guid,
    pub partition_entry_lba: u64,
    pub number_of_partition_entries: u32,
    pub size_of_partition_entry: u32,
    pub partition_entry_array_crc32: u32,
    pub partitions: Vec<GptPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GptPartition {
    pub type_guid: Guid,
    pub unique_guid: Guid,
    pub starting_lba: u64,
    pub ending_lba: u64,
    pub attributes: u64,
    pub name: String,
}

/// GUID of shim's variables (MokList, SbatLevel, Shim, ...).
pub(crate) const SHIM_LOCK_GUID: Guid = Guid::from_fields(
    0x605dab50,
    0xe046,
    0x4300,
    [0xab, 0xb6, 0x3d, 0xd8, 0x10, 0xdd, 0x8b, 0x23],
);

/// A string event as tpm2-tools prints it and upstream reads it back: the bytes as text,
/// one trailing NUL dropped (UTF-16 strings keep their interleaved NULs).
pub(crate) fn tpm2_string(data: &[u8]) -> String {
    let data = data.strip_suffix(&[0]).unwrap_or(data);
    String::from_utf8_lossy(data).into_owned()
}

impl Event {
    /// This event's data as tpm2-tools decodes it.
    pub(crate) fn view(&self) -> Body<'_> {
        body(self)
    }
}

fn body(event: &Event) -> Body<'_> {
    let data = event.data.as_slice();
    if data.is_empty() {
        return Body::Empty;
    }
    let mut r = Reader::new(data);
    match event.event_type {
        EventType::EV_NO_ACTION if event.number == 0 && data.starts_with(SPEC_ID_SIGNATURE) => {
            Body::SpecId
        }
        EventType::EV_NO_ACTION => {
            if data.len() > 16 && data.starts_with(STARTUP_LOCALITY_SIGNATURE) {
                Body::StartupLocality(data[16])
            } else {
                Body::Hex(data)
            }
        }
        EventType::EV_EFI_VARIABLE_DRIVER_CONFIG
        | EventType::EV_EFI_VARIABLE_BOOT
        | EventType::EV_EFI_VARIABLE_BOOT2
        | EventType::EV_EFI_VARIABLE_AUTHORITY => match EfiVariable::decode(data) {
            Ok(var) => Body::Variable(variable(event.event_type, data, var)),
            Err(e) => Body::Malformed(e.to_string()),
        },
        EventType::EV_POST_CODE if data.len() == 16 => blob(&mut r),
        EventType::EV_POST_CODE | EventType::EV_EFI_ACTION | EventType::EV_EFI_HCRTM_EVENT => {
            Body::Text(tpm2_string(data))
        }
        EventType::EV_S_CRTM_CONTENTS | EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB => blob(&mut r),
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2 => {
            let parsed = (|| {
                let n = r.u8("BlobDescriptionSize").ok()?;
                let description = r.take(u64::from(n), "BlobDescription").ok()?;
                Some(Body::Blob2 {
                    description,
                    base: r.u64("BlobBase").ok()?,
                    length: r.u64("BlobLength").ok()?,
                })
            })();
            parsed
                .unwrap_or_else(|| Body::Malformed("UEFI_PLATFORM_FIRMWARE_BLOB2 truncated".into()))
        }
        EventType::EV_IPL => Body::Ipl(tpm2_string(data)),
        EventType::EV_EFI_BOOT_SERVICES_APPLICATION
        | EventType::EV_EFI_BOOT_SERVICES_DRIVER
        | EventType::EV_EFI_RUNTIME_SERVICES_DRIVER => image(data),
        EventType::EV_EFI_GPT_EVENT => gpt(data),
        _ => Body::Hex(data),
    }
}

fn blob(r: &mut Reader<'_>) -> Body<'static> {
    match (r.u64("BlobBase"), r.u64("BlobLength")) {
        (Ok(base), Ok(length)) => Body::Blob { base, length },
        _ => Body::Malformed("UEFI_PLATFORM_FIRMWARE_BLOB shorter than 16 bytes".into()),
    }
}

fn image(data: &[u8]) -> Body<'_> {
    let mut r = Reader::new(data);
    let head = (|| {
        Some((
            r.u64("ImageLocationInMemory").ok()?,
            r.u64("ImageLengthInMemory").ok()?,
            r.u64("ImageLinkTimeAddress").ok()?,
            r.u64("LengthOfDevicePath").ok()?,
        ))
    })();
    let Some((location, length, link_time_address, path_length)) = head else {
        return Body::Malformed("UEFI_IMAGE_LOAD_EVENT shorter than 32 bytes".into());
    };
    let rest = r.rest();
    let path = usize::try_from(path_length)
        .ok()
        .and_then(|n| rest.get(..n))
        .unwrap_or(rest);
    let device_path = format_device_path(path).unwrap_or_else(|| hex::encode(rest));
    Body::Image(ImageView {
        location,
        length,
        link_time_address,
        path_length,
        device_path,
        raw_path: path.to_vec(),
    })
}

fn variable<'a>(ty: EventType, raw: &'a [u8], var: EfiVariable) -> VariableView<'a> {
    // `EfiVariable::decode` succeeded, so the header, the name and the value all fit.
    let name_length = raw
        .get(16..24)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    let value_at = usize::try_from(name_length)
        .ok()
        .and_then(|n| n.checked_mul(2))
        .and_then(|n| n.checked_add(32))
        .unwrap_or(raw.len());
    let value = raw
        .get(value_at..)
        .and_then(|rest| rest.get(..var.data.len()))
        .unwrap_or_default();
    let data = var_data(ty, &var.name, value);
    VariableView {
        guid: var.vendor,
        name: var.name,
        name_length,
        data_length: value.len() as u64,
        data,
    }
}

fn var_data<'a>(ty: EventType, name: &str, value: &'a [u8]) -> VarData<'a> {
    let fallback = || {
        if value.is_empty() {
            VarData::Absent
        } else {
            VarData::Hex(value)
        }
    };
    match (ty, name) {
        (EventType::EV_EFI_VARIABLE_DRIVER_CONFIG, "PK" | "KEK" | "db" | "dbx") => {
            if value.is_empty() {
                return VarData::SignatureLists(None);
            }
            match SignatureList::decode_all(value) {
                Ok(lists) => VarData::SignatureLists(Some(lists)),
                Err(e) => VarData::Malformed(e.to_string()),
            }
        }
        (EventType::EV_EFI_VARIABLE_DRIVER_CONFIG, "SecureBoot")
        | (EventType::EV_EFI_VARIABLE_AUTHORITY, "MokListTrusted") => match value {
            [] => VarData::Enabled(false),
            [b] => VarData::Enabled(*b != 0),
            _ => VarData::Malformed(format!(
                "{name} value of {} bytes (expected at most 1)",
                value.len()
            )),
        },
        (EventType::EV_EFI_VARIABLE_AUTHORITY, "db" | "Shim") => match value.split_at_checked(16) {
            Some((owner, data)) => VarData::Signatures(vec![SignatureData {
                owner: Guid(owner.try_into().unwrap_or_default()),
                data: data.to_vec(),
            }]),
            None => VarData::Malformed(format!(
                "{name} value of {} bytes is shorter than an EFI_SIGNATURE_DATA",
                value.len()
            )),
        },
        (EventType::EV_EFI_VARIABLE_AUTHORITY, "SbatLevel") => VarData::Text(tpm2_string(value)),
        (EventType::EV_EFI_VARIABLE_AUTHORITY, "vendor_db") => {
            let sigs = split_certificates(value);
            if sigs.is_empty() {
                fallback()
            } else {
                VarData::Signatures(sigs)
            }
        }
        (EventType::EV_EFI_VARIABLE_BOOT | EventType::EV_EFI_VARIABLE_BOOT2, "BootOrder") => {
            if !value.len().is_multiple_of(2) {
                return VarData::Malformed(format!("BootOrder of odd length {}", value.len()));
            }
            VarData::BootOrder(
                value
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            )
        }
        (EventType::EV_EFI_VARIABLE_BOOT | EventType::EV_EFI_VARIABLE_BOOT2, n)
            if is_boot_option_name(n) =>
        {
            boot_option(value)
        }
        _ => fallback(),
    }
}

/// `Boot` followed by exactly four hex digits.
fn is_boot_option_name(name: &str) -> bool {
    name.len() == 8
        && name.starts_with("Boot")
        && name.bytes().skip(4).all(|b| b.is_ascii_hexdigit())
}

/// `EFI_LOAD_OPTION`: attributes, file path length, UTF-16 description, device path.
fn boot_option(value: &[u8]) -> VarData<'_> {
    let mut r = Reader::new(value);
    let (Ok(attributes), Ok(file_path_list_length)) =
        (r.u32("Attributes"), r.u16("FilePathListLength"))
    else {
        return VarData::Malformed("EFI_LOAD_OPTION shorter than 6 bytes".into());
    };
    let rest = r.rest();
    let end = rest
        .chunks_exact(2)
        .position(|c| c == [0, 0])
        .map_or(rest.len(), |i| i * 2 + 2);
    let description = utf16le(rest.get(..end).unwrap_or(rest));
    let after = rest.get(end..).unwrap_or(&[]);
    // The file path list, without the optional data that may follow it.
    let path = after
        .get(..usize::from(file_path_list_length))
        .unwrap_or(after);
    VarData::BootOption {
        enabled: attributes & 1 == 1,
        file_path_list_length,
        description,
        device_path: format_device_path(path).unwrap_or_else(|| hex::encode(path)),
    }
}

/// Split shim's `vendor_db` value (owner GUID + DER certificate, repeated, without list
/// headers) on the certificates' `SEQUENCE` headers, as upstream's enrichment does.
fn split_certificates(value: &[u8]) -> Vec<SignatureData> {
    const SEARCH: usize = 100;
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 16 < value.len() {
        let owner: [u8; 16] = match value.get(at..at + 16).and_then(|s| s.try_into().ok()) {
            Some(o) => o,
            None => break,
        };
        let search_end = (at + 16 + SEARCH).min(value.len().saturating_sub(2));
        let Some(cert) = (at + 16..search_end).find(|&i| value[i] == 0x30 && value[i + 1] == 0x82)
        else {
            break;
        };
        let Some(len) = value.get(cert + 2..cert + 4) else {
            break;
        };
        let end = cert + 4 + usize::from(u16::from_be_bytes([len[0], len[1]]));
        let Some(data) = value.get(at + 16..end) else {
            break;
        };
        out.push(SignatureData {
            owner: Guid(owner),
            data: data.to_vec(),
        });
        at = end;
    }
    out
}

fn gpt(data: &[u8]) -> Body<'_> {
    let mut r = Reader::new(data);
    let parsed = (|| {
        let signature = r.take(8, "Signature").ok()?;
        let mut view = GptView {
            signature: String::from_utf8_lossy(signature).into_owned(),
            revision: r.u32("Revision").ok()?,
            header_size: r.u32("HeaderSize").ok()?,
            header_crc32: r.u32("HeaderCRC32").ok()?,
            my_lba: {
                r.u32("Reserved").ok()?;
                r.u64("MyLBA").ok()?
            },
            alternate_lba: r.u64("AlternateLBA").ok()?,
            first_usable_lba: r.u64("FirstUsableLBA").ok()?,
            last_usable_lba: r.u64("LastUsableLBA").ok()?,
            disk_guid: Guid(r.array("DiskGUID").ok()?),
            partition_entry_lba: r.u64("PartitionEntryLBA").ok()?,
            number_of_partition_entries: r.u32("NumberOfPartitionEntries").ok()?,
            size_of_partition_entry: r.u32("SizeOfPartitionEntry").ok()?,
            partition_entry_array_crc32: r.u32("PartitionEntryArrayCRC32").ok()?,
            partitions: Vec::new(),
        };
        let count = r.u64("NumberOfPartitions").ok()?;
        // Each entry is 128 bytes: bound the count by the data before allocating.
        if count > (r.remaining() / 128) as u64 {
            return None;
        }
        for _ in 0..count {
            view.partitions.push(GptPartition {
                type_guid: Guid(r.array("PartitionTypeGUID").ok()?),
                unique_guid: Guid(r.array("UniquePartitionGUID").ok()?),
                starting_lba: r.u64("StartingLBA").ok()?,
                ending_lba: r.u64("EndingLBA").ok()?,
                attributes: r.u64("Attributes").ok()?,
                name: utf16le(r.take(72, "PartitionName").ok()?),
            });
        }
        Some(view)
    })();
    match parsed {
        Some(view) if r.remaining() == 0 => Body::Gpt(view),
        _ => Body::Malformed("UEFI_GPT_DATA inconsistent with its size".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpm2_strings_drop_one_trailing_nul() {
        assert_eq!(tpm2_string(b"MokList\0"), "MokList");
        assert_eq!(tpm2_string(b"a\0\0"), "a\0");
        assert_eq!(tpm2_string(b""), "");
    }

    #[test]
    fn boot_option_names() {
        assert!(is_boot_option_name("Boot000A"));
        assert!(!is_boot_option_name("BootOrder"));
        assert!(!is_boot_option_name("Boot0000X"));
    }

    #[test]
    fn vendor_db_splits_on_certificates() {
        let mut value = vec![0x11; 16];
        value.extend_from_slice(&[0x30, 0x82, 0x00, 0x02, 0xAA, 0xBB]);
        value.extend_from_slice(&[0x22; 16]);
        value.extend_from_slice(&[0x30, 0x82, 0x00, 0x01, 0xCC]);
        let sigs = split_certificates(&value);
        assert_eq!(sigs.len(), 2);
        assert_eq!(sigs[0].data, [0x30, 0x82, 0, 2, 0xAA, 0xBB]);
        assert_eq!(sigs[1].owner, Guid([0x22; 16]));
        // No certificate header: nothing split.
        assert!(split_certificates(&[0u8; 40]).is_empty());
    }
}
