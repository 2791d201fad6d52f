//! Native parser for TCG PC Client UEFI event logs (`binary_bios_measurements`), PCR
//! replay (PROTOCOL.md §8.5) and measured-boot policies (§8.4).
//!
//! * [`EventLog::parse`]: `&[u8]` in, typed structures out; each event records whether its
//!   digests match its data where the data is what was measured ([`DigestCheck`]).
//! * [`replay`]: the PCR values every bank of the log implies.
//! * [`PreparedMbPolicy`] and [`check`]: upstream Keylime's built-in measured-boot
//!   policies (`accept-all`, `reject-all`, `example`) over an agent's reference state,
//!   and the per-quote check (replay against the quote, then the policy), with upstream's
//!   failure event ids; [`refstate_from_log`] derives a reference state from a log.
//! * [`inspect_json`] / [`inspect_text`]: a log as `tpm2_eventlog` shows it.
//!
//! The crate does no I/O, keeps no state between calls, never panics on hostile input and
//! never allocates from a size field before checking it against the input left.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use keylime_eventlog::{HashAlg, PreparedMbPolicy, check};
//!
//! let bytes = std::fs::read("/sys/kernel/security/tpm0/binary_bios_measurements").unwrap();
//! let log = keylime_eventlog::EventLog::parse(&bytes).unwrap();
//! let pcrs = keylime_eventlog::replay(&log);
//!
//! let refstate = keylime_eventlog::refstate_from_log(&bytes, true).unwrap();
//! let policy = PreparedMbPolicy::prepare("example", Some(&refstate)).unwrap();
//! let quoted: BTreeMap<u8, Vec<u8>> = BTreeMap::new(); // the quote's sha256 PCR values
//! let verdict = check(&bytes, HashAlg::Sha256, &quoted, &policy);
//! for failure in &verdict.failures {
//!     println!("{}: {}", failure.event_id(), failure.context);
//! }
//! ```
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
