#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod decode;
mod device_path;
mod digest_check;
mod efi;
mod error;
mod event_type;
mod inspect;
mod log;
mod policy;
mod reader;
mod replay;
mod view;

pub use decode::{EventData, decode};
pub use device_path::format_device_path;
pub use efi::{EfiVariable, Guid, ImageLoad, SignatureData, SignatureKind, SignatureList, utf16le};
pub use error::{EventDataError, EventLogError};
pub use event_type::EventType;
pub use inspect::{inspect_json, inspect_text};
pub use keylime_tpm::alg::HashAlg;
pub use log::{
    DigestCheck, Event, EventDigest, EventLog, LogFormat, MAX_SPEC_ALGORITHMS, SPEC_ID_SIGNATURE,
    STARTUP_LOCALITY_SIGNATURE, SpecAlgorithm, SpecIdEvent, Trailing, TrailingKind, parse,
};
pub use policy::{
    EXAMPLE_POLICY_PCRS, MEASURED_BOOT_PCRS, MbComponent, MbFailure, MbPolicyError, MbPolicyName,
    MbVerdict, PreparedMbPolicy, boot_aggregates, check, check_replay_only, refstate_from_log,
};
pub use replay::{PcrBanks, replay};
