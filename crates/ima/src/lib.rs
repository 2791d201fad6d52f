//! IMA measurement lists: the ASCII list parser (and the binary list's), template-data
//! reconstruction and template hashes, and the PCR 10 replay in the sha1 and extended banks
//! (PROTOCOL.md §8.1); plus the runtime-policy model ([`policy`], §8.2).
//!
//! This crate owns the *integrity of the chain*: that every line is well formed, that its
//! template hash covers its fields, and which prefix of the list the quoted PCR 10 vouches for.
//! It does no I/O and knows nothing of runtime policies' verdicts on file contents.
//!
//! Parsing borrows from the input (`&str`); no allocation per entry. Hex fields are decoded
//! into fixed arrays or streamed in chunks into the hashers.
#![forbid(unsafe_code)]

mod binary;
mod digest;
mod entry;
mod error;
mod hex;
pub mod policy;
mod replay;
mod template;

pub use binary::{BinaryEntries, BinaryEntry, parse_binary_log};
pub use digest::{DigestBuf, MAX_DIGEST_LEN};
pub use entry::{Entries, Entry, FileDigest, MAX_LINE_LEN, Template, parse_line, parse_log};
pub use error::{ImaError, ParseErrorKind};
pub use keylime_tpm::HashAlg;
pub use replay::{ChainVerifier, EntryCheck, QuotedMatch, Replay};
pub use template::{TemplateHasher, TemplateRecord, template_hash, write_template_data};
