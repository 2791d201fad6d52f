//! Typed errors: every parse error names the 1-based line of the measurement list.

use keylime_tpm::HashAlg;

/// An error of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImaError {
    /// A line of the ASCII measurement list is malformed (upstream `ima.parser.entry`).
    #[error("IMA measurement list line {line}: {kind}")]
    Parse { line: usize, kind: ParseErrorKind },
    /// A record of the binary measurement list is malformed.
    #[error("IMA binary measurement list record {record} at byte {offset}: {kind}")]
    Binary {
        record: usize,
        offset: usize,
        kind: ParseErrorKind,
    },
    /// The replay was asked for a bank this crate does not hash.
    #[error("IMA replay: the {0} PCR bank is not supported (sha1, sha256, sha384, sha512 are)")]
    UnsupportedBank(HashAlg),
    /// A resume value or quoted value has the wrong size for its bank.
    #[error("IMA replay: {what} for the {bank} bank is {len} bytes, expected {expected}")]
    ValueLength {
        what: &'static str,
        bank: HashAlg,
        len: usize,
        expected: usize,
    },
}

/// What was wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("line is {len} bytes, the limit is {max}")]
    LineTooLong { len: usize, max: usize },
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error("PCR index {0:?} is not a number below 24")]
    BadPcr(String),
    #[error("field {field} is not hex (bad character or odd length at offset {offset})")]
    BadHex { field: &'static str, offset: usize },
    #[error("field {field} has {len} bytes, expected {expected}")]
    BadLength {
        field: &'static str,
        len: usize,
        expected: &'static str,
    },
    #[error("unknown template {0:?} (ima, ima-ng, ima-sig, ima-buf and ima-modsig are known)")]
    UnknownTemplate(String),
    #[error("file digest algorithm {0:?} is malformed")]
    BadDigestAlgorithm(String),
    #[error("file name is {len} bytes, the ima template allows at most 255")]
    NameTooLong { len: usize },
    #[error("field {field} needs {need} bytes, only {have} remain")]
    Truncated {
        field: &'static str,
        need: usize,
        have: usize,
    },
}

/// Truncates untrusted text quoted in an error, on a char boundary.
pub(crate) fn excerpt(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
