//! Typed views of event data for the event types that carry meaning; anything else stays
//! raw. Decoding is on demand so a malformed payload is an error for that event only.

use crate::efi::{EfiVariable, ImageLoad, short, utf16le};
use crate::error::EventDataError;
use crate::event_type::EventType;
use crate::log::{Event, SPEC_ID_SIGNATURE, STARTUP_LOCALITY_SIGNATURE};
use crate::reader::Reader;

/// The meaning of one event's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventData {
    /// The crypto-agile header (see [`crate::EventLog::spec_id`]).
    SpecId,
    /// EV_NO_ACTION "StartupLocality".
    StartupLocality(u8),
    /// Another EV_NO_ACTION event, by its NUL-terminated signature (e.g. "SP800-155 Event3").
    NoAction { signature: String, data: Vec<u8> },
    /// EV_SEPARATOR: `0x00000000` normally, `0xFFFFFFFF` after a firmware error.
    Separator { value: Vec<u8>, error: bool },
    /// EV_EFI_VARIABLE_DRIVER_CONFIG / BOOT / BOOT2 / AUTHORITY.
    Variable(EfiVariable),
    /// EV_EFI_BOOT_SERVICES_APPLICATION / DRIVER, EV_EFI_RUNTIME_SERVICES_DRIVER.
    ImageLoad(ImageLoad),
    /// Text events: EV_IPL (grub commands, kernel command line), EV_EFI_ACTION, EV_ACTION,
    /// EV_S_CRTM_VERSION (UTF-16 or ASCII), EV_POST_CODE strings.
    Text(String),
    /// `UEFI_PLATFORM_FIRMWARE_BLOB` (EV_POST_CODE, EV_EFI_PLATFORM_FIRMWARE_BLOB).
    FirmwareBlob { base: u64, length: u64 },
    /// EV_EFI_GPT_EVENT (`UEFI_GPT_DATA`, kept raw).
    Gpt(Vec<u8>),
    /// Anything else.
    Raw(Vec<u8>),
}

impl Event {
    /// Decode this event's data according to its type.
    pub fn decode(&self) -> Result<EventData, EventDataError> {
        decode(self.event_type, &self.data)
    }
}

/// Decode `data` as the payload of an event of type `ty`.
pub fn decode(ty: EventType, data: &[u8]) -> Result<EventData, EventDataError> {
    Ok(match ty {
        EventType::EV_NO_ACTION => no_action(data),
        EventType::EV_SEPARATOR => EventData::Separator {
            value: data.to_vec(),
            error: data == [0xFF; 4],
        },
        EventType::EV_EFI_VARIABLE_DRIVER_CONFIG
        | EventType::EV_EFI_VARIABLE_BOOT
        | EventType::EV_EFI_VARIABLE_BOOT2
        | EventType::EV_EFI_VARIABLE_AUTHORITY => EventData::Variable(EfiVariable::decode(data)?),
        EventType::EV_EFI_BOOT_SERVICES_APPLICATION
        | EventType::EV_EFI_BOOT_SERVICES_DRIVER
        | EventType::EV_EFI_RUNTIME_SERVICES_DRIVER => {
            EventData::ImageLoad(ImageLoad::decode(data)?)
        }
        EventType::EV_EFI_GPT_EVENT => EventData::Gpt(data.to_vec()),
        EventType::EV_S_CRTM_VERSION | EventType::EV_IPL => EventData::Text(text_or_utf16(data)),
        EventType::EV_EFI_ACTION | EventType::EV_ACTION => EventData::Text(ascii(data)),
        EventType::EV_POST_CODE | EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB if data.len() == 16 => {
            let mut r = Reader::new(data);
            EventData::FirmwareBlob {
                base: r.u64("BlobBase").map_err(short)?,
                length: r.u64("BlobLength").map_err(short)?,
            }
        }
        EventType::EV_POST_CODE => EventData::Text(ascii(data)),
        _ => EventData::Raw(data.to_vec()),
    })
}

fn no_action(data: &[u8]) -> EventData {
    if data.starts_with(SPEC_ID_SIGNATURE) {
        return EventData::SpecId;
    }
    if data.len() == 17 && data.starts_with(STARTUP_LOCALITY_SIGNATURE) {
        return EventData::StartupLocality(data.get(16).copied().unwrap_or(0));
    }
    let sig = data.get(..16).unwrap_or(data);
    EventData::NoAction {
        signature: ascii(sig),
        data: data.to_vec(),
    }
}

/// Text up to the first NUL, invalid UTF-8 replaced (grub strings are NUL-terminated).
fn ascii(data: &[u8]) -> String {
    let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(data.get(..end).unwrap_or(data)).into_owned()
}

/// EV_S_CRTM_VERSION is UTF-16 on EDK2 and most vendors, plain bytes on a few; EV_IPL is
/// ASCII from grub and UTF-16 from systemd-boot.
fn text_or_utf16(data: &[u8]) -> String {
    let looks_utf16 = data.len() >= 2 && data.get(1) == Some(&0);
    if looks_utf16 {
        utf16le(data)
    } else {
        ascii(data)
    }
}
