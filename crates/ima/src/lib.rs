#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod binary;
mod check;
mod digest;
mod entry;
mod error;
pub mod file_signature;
mod hex;
pub mod policy;
mod prepared;
mod replay;
mod template;

pub use binary::{BinaryEntries, BinaryEntry, parse_binary_log};
pub use check::{
    BOOT_AGGREGATE, ImaCheckInput, ImaFailure, ImaState, ImaVerdict, LearnedKey, MAX_EVENTS_PER_ID,
    boot_aggregate, check, failure_ids,
};
pub use digest::{DigestBuf, MAX_DIGEST_LEN};
pub use entry::{Entries, Entry, FileDigest, MAX_LINE_LEN, Template, parse_line, parse_log};
pub use error::{ImaError, ParseErrorKind};
pub use keylime_tpm::HashAlg;
pub use prepared::{
    DigestList, EXCLUDES_DFA_SIZE_LIMIT, EXCLUDES_SIZE_LIMIT, PreparedRuntimePolicy,
};
pub use replay::{ChainVerifier, EntryCheck, QuotedMatch, Replay};
pub use template::{TemplateHasher, TemplateRecord, template_hash, write_template_data};
