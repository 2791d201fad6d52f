//! IMA measurement lists and the verifier's IMA check (PROTOCOL.md §8.1, §8.2, §5.6).
//!
//! - Parsing: the ASCII list ([`parse_log`], borrowed, no allocation per entry) and the
//!   binary one ([`parse_binary_log`]); template data and template hashes
//!   ([`write_template_data`], [`template_hash`]).
//! - Chain: PCR 10 replay in the sha1/sha256/sha384/sha512 banks, resumable at an entry
//!   index ([`Replay`]), template-hash checks and the search for the quoted value in one
//!   pass ([`ChainVerifier`]).
//! - Policy: the runtime-policy model ([`policy`]: v1 JSON, DSSE envelopes, legacy
//!   allowlists) and its indexed form for evaluation ([`PreparedRuntimePolicy`], built once
//!   per policy version and shared).
//! - File signatures: the IMA v2 signature header, key ids, RSA and ECDSA verification and
//!   the `verification-keys` keyring ([`file_signature`]).
//! - The check: [`check`] takes one received chunk, the quote's PCRs, the prepared policy
//!   and the prior [`ImaState`], proves the chunk's chain before it evaluates any entry, and
//!   returns upstream's failure events and the next state ([`ImaVerdict`]).
//!
//! Nothing here does I/O or reads a clock; every parse error names its line.
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
