//! TCG PC Client event types (PROTOCOL.md §10), kept as numbers so that non-standard types
//! survive parsing; [`EventType::name`] gives the TCG name when there is one.

use std::fmt;

/// An event's `eventType` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventType(pub u32);

const EFI: u32 = 0x8000_0000;

macro_rules! event_types {
    ($($name:ident = $value:expr),* $(,)?) => {
        impl EventType {
            $(pub const $name: EventType = EventType($value);)*

            /// The TCG name (`EV_SEPARATOR`, ...), `None` for a non-standard type.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(EventType::$name => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

event_types! {
    EV_PREBOOT_CERT = 0x0,
    EV_POST_CODE = 0x1,
    EV_UNUSED = 0x2,
    EV_NO_ACTION = 0x3,
    EV_SEPARATOR = 0x4,
    EV_ACTION = 0x5,
    EV_EVENT_TAG = 0x6,
    EV_S_CRTM_CONTENTS = 0x7,
    EV_S_CRTM_VERSION = 0x8,
    EV_CPU_MICROCODE = 0x9,
    EV_PLATFORM_CONFIG_FLAGS = 0xA,
    EV_TABLE_OF_DEVICES = 0xB,
    EV_COMPACT_HASH = 0xC,
    EV_IPL = 0xD,
    EV_IPL_PARTITION_DATA = 0xE,
    EV_NONHOST_CODE = 0xF,
    EV_NONHOST_CONFIG = 0x10,
    EV_NONHOST_INFO = 0x11,
    EV_OMIT_BOOT_DEVICE_EVENTS = 0x12,
    EV_EFI_EVENT_BASE = EFI,
    EV_EFI_VARIABLE_DRIVER_CONFIG = EFI + 1,
    EV_EFI_VARIABLE_BOOT = EFI + 2,
    EV_EFI_BOOT_SERVICES_APPLICATION = EFI + 3,
    EV_EFI_BOOT_SERVICES_DRIVER = EFI + 4,
    EV_EFI_RUNTIME_SERVICES_DRIVER = EFI + 5,
    EV_EFI_GPT_EVENT = EFI + 6,
    EV_EFI_ACTION = EFI + 7,
    EV_EFI_PLATFORM_FIRMWARE_BLOB = EFI + 8,
    EV_EFI_HANDOFF_TABLES = EFI + 9,
    EV_EFI_PLATFORM_FIRMWARE_BLOB2 = EFI + 0xA,
    EV_EFI_HANDOFF_TABLES2 = EFI + 0xB,
    EV_EFI_VARIABLE_BOOT2 = EFI + 0xC,
    EV_EFI_HCRTM_EVENT = EFI + 0x10,
    EV_EFI_VARIABLE_AUTHORITY = EFI + 0xE0,
}

impl EventType {
    /// Whether the spec defines this event's digest as the hash of its whole data, so that
    /// a mismatch between the two is meaningful (others hash something outside the log).
    /// EV_IPL and boot variables are checked by their own rules ([`crate::DigestCheck`]):
    /// grub hashes the command without its prefix, EDK2 only a boot variable's value.
    pub fn digest_covers_data(self) -> bool {
        matches!(
            self,
            EventType::EV_SEPARATOR
                | EventType::EV_ACTION
                | EventType::EV_EFI_ACTION
                | EventType::EV_S_CRTM_VERSION
                | EventType::EV_EFI_VARIABLE_DRIVER_CONFIG
                | EventType::EV_EFI_VARIABLE_AUTHORITY
                | EventType::EV_EFI_GPT_EVENT
        )
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{:#010x}", self.0),
        }
    }
}
