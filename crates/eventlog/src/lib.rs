//! Native parser for TCG PC Client UEFI event logs (`binary_bios_measurements`) and PCR
//! replay (PROTOCOL.md §8.5).
//!
//! Owns the binary formats only: `&[u8]` in, typed structures out. It does no I/O, keeps
//! no state between calls, never panics on hostile input and never allocates from a size
//! field before checking it against the input left. Policy decisions (which digests are
//! acceptable) belong to the measured-boot policy engine, not here.
//!
//! ```no_run
//! let bytes = std::fs::read("/sys/kernel/security/tpm0/binary_bios_measurements").unwrap();
//! let log = keylime_eventlog::EventLog::parse(&bytes).unwrap();
//! let pcrs = keylime_eventlog::replay(&log);
//! ```
#![forbid(unsafe_code)]

mod decode;
mod efi;
mod error;
mod event_type;
mod log;
mod reader;
mod replay;

pub use decode::{EventData, decode};
pub use efi::{EfiVariable, Guid, ImageLoad, SignatureData, SignatureKind, SignatureList, utf16le};
pub use error::{EventDataError, EventLogError};
pub use event_type::EventType;
pub use keylime_tpm::alg::HashAlg;
pub use log::{
    DigestCheck, Event, EventDigest, EventLog, LogFormat, MAX_SPEC_ALGORITHMS, SPEC_ID_SIGNATURE,
    STARTUP_LOCALITY_SIGNATURE, SpecAlgorithm, SpecIdEvent, Trailing, TrailingKind, parse,
};
pub use replay::{PcrBanks, replay};
