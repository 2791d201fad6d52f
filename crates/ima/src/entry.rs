//! One line of the ASCII measurement list: `PCR template_hash template_name fields…`,
//! parsed without allocation into an [`Entry`] borrowing the input (PROTOCOL.md §8.1).

use crate::digest::{DigestBuf, MAX_DIGEST_LEN};
use crate::error::{ImaError, ParseErrorKind, excerpt};
use crate::hex;

/// Longest accepted line. Real lines are far shorter (an ima-buf with an X.509 certificate
/// is a few KiB); the limit bounds work on hostile input.
pub const MAX_LINE_LEN: usize = 1 << 20;

/// The IMA template of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Template {
    /// `d|n`: SHA-1 file digest and a name padded to 256 bytes.
    Ima,
    /// `d-ng|n-ng`.
    ImaNg,
    /// `d-ng|n-ng|sig`.
    ImaSig,
    /// `d-ng|n-ng|buf`.
    ImaBuf,
    /// `d-ng|n-ng|sig|d-modsig|modsig`; parsed, but upstream Keylime rejects it.
    ImaModsig,
}

impl Template {
    /// Every template, in the order of this enum.
    pub const ALL: [Template; 5] = [
        Template::Ima,
        Template::ImaNg,
        Template::ImaSig,
        Template::ImaBuf,
        Template::ImaModsig,
    ];

    /// The template name as the kernel writes it.
    pub fn name(self) -> &'static str {
        match self {
            Template::Ima => "ima",
            Template::ImaNg => "ima-ng",
            Template::ImaSig => "ima-sig",
            Template::ImaBuf => "ima-buf",
            Template::ImaModsig => "ima-modsig",
        }
    }

    /// Parses a template name.
    pub fn from_name(name: &str) -> Option<Template> {
        Template::ALL.into_iter().find(|t| t.name() == name)
    }

    /// False for `ima-modsig`, which upstream Keylime 7.14.3 refuses (`ima.parser.entry`).
    pub fn accepted_upstream(self) -> bool {
        self != Template::ImaModsig
    }
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A file digest field (`d` or `d-ng`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileDigest<'a> {
    /// The algorithm prefix as written (`sha256`), `None` for a bare hex digest (the `ima`
    /// template, or a legacy `d-ng` without prefix).
    pub algorithm: Option<&'a str>,
    pub digest: DigestBuf,
}

impl FileDigest<'_> {
    /// The algorithm name: the prefix, or for a bare digest `sha1` (20 bytes) / `md5` (16).
    pub fn algorithm_name(&self) -> &str {
        match self.algorithm {
            Some(a) => a,
            None if self.digest.len() == 16 => "md5",
            None => "sha1",
        }
    }
}

/// One parsed measurement-list line. Hex fields of unbounded size (signatures, buffers) stay
/// as validated hex slices of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// 1-based line number in the parsed text.
    pub line: usize,
    pub pcr: u32,
    /// Column 2: H_log(template data), or all zeros for a violation.
    pub template_hash: DigestBuf,
    pub template: Template,
    pub digest: FileDigest<'a>,
    /// File path, buffer name or keyring name (`n`/`n-ng`).
    pub name: &'a str,
    /// `sig` field as hex (ima-sig, ima-modsig); empty when absent.
    pub sig_hex: &'a str,
    /// `buf` field as hex (ima-buf); empty otherwise.
    pub buf_hex: &'a str,
    /// `d-modsig` (ima-modsig only).
    pub modsig_digest: Option<FileDigest<'a>>,
    /// `modsig` as hex (ima-modsig only).
    pub modsig_hex: &'a str,
}

impl<'a> Entry<'a> {
    /// A ToMToU/open-writers violation: column 2 is all zeros.
    pub fn is_violation(&self) -> bool {
        self.template_hash.is_all_zero()
    }

    /// The raw signature bytes (empty if none).
    pub fn signature(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.sig_hex.len() / 2);
        hex::decode_chunks(self.sig_hex.as_bytes(), |c| out.extend_from_slice(c));
        out
    }

    /// The raw `buf` bytes of an ima-buf entry (empty otherwise).
    pub fn buffer(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buf_hex.len() / 2);
        hex::decode_chunks(self.buf_hex.as_bytes(), |c| out.extend_from_slice(c));
        out
    }
}

fn err(line: usize, kind: ParseErrorKind) -> ImaError {
    ImaError::Parse { line, kind }
}

fn split_space(s: &str) -> Option<(&str, &str)> {
    s.split_once(' ')
}

fn parse_hex_digest(line: usize, field: &'static str, hexs: &str) -> Result<DigestBuf, ImaError> {
    let b = hexs.as_bytes();
    let bad_hex = |offset| err(line, ParseErrorKind::BadHex { field, offset });
    let n = b.len() / 2;
    if n == 0 || n > MAX_DIGEST_LEN || !b.len().is_multiple_of(2) {
        // bad characters are reported before a bad length
        hex::validate(b).map_err(bad_hex)?;
        return Err(err(
            line,
            ParseErrorKind::BadLength {
                field,
                len: n,
                expected: "1 to 64",
            },
        ));
    }
    // one pass: decoding stops at, and names, the first bad character
    let mut d = DigestBuf::zeros(n);
    hex::decode_into(b, d.bytes_mut()).map_err(bad_hex)?;
    Ok(d)
}

fn known_len(alg: &str) -> Option<(usize, &'static str)> {
    Some(match alg {
        "md5" => (16, "16 (md5)"),
        "sha1" => (20, "20 (sha1)"),
        "sha224" => (28, "28 (sha224)"),
        "sha256" => (32, "32 (sha256)"),
        "sm3" | "sm3-256" | "sm3_256" => (32, "32 (sm3)"),
        "sha384" => (48, "48 (sha384)"),
        "sha512" => (64, "64 (sha512)"),
        _ => return None,
    })
}

/// Parses a `d-ng` field: `algo:hex` or bare hex.
fn parse_digest_ng<'a>(
    line: usize,
    field: &'static str,
    s: &'a str,
) -> Result<FileDigest<'a>, ImaError> {
    let (algorithm, hexs) = match s.split_once(':') {
        Some((a, h)) => {
            let ok = !a.is_empty()
                && a.len() <= 32
                && a.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
            if !ok {
                return Err(err(line, ParseErrorKind::BadDigestAlgorithm(excerpt(a))));
            }
            (Some(a), h)
        }
        None => (None, s),
    };
    let digest = parse_hex_digest(line, field, hexs)?;
    let expected = match algorithm {
        Some(a) => known_len(a),
        None if digest.len() == 16 => None,
        None => Some((20, "20 (bare sha1) or 16 (bare md5)")),
    };
    if let Some((n, text)) = expected
        && digest.len() != n
    {
        return Err(err(
            line,
            ParseErrorKind::BadLength {
                field,
                len: digest.len(),
                expected: text,
            },
        ));
    }
    Ok(FileDigest { algorithm, digest })
}

fn check_hex(line: usize, field: &'static str, s: &str) -> Result<(), ImaError> {
    hex::validate(s.as_bytes())
        .map_err(|offset| err(line, ParseErrorKind::BadHex { field, offset }))
}

/// Splits `rest` as `head SP tail` at the last space; no space → (`rest`, "").
fn rsplit_space(rest: &str) -> (&str, &str) {
    rest.rsplit_once(' ').unwrap_or((rest, ""))
}

/// Parses one line (without its `\n`); `line` is its 1-based number, used in errors.
pub fn parse_line(text: &str, line: usize) -> Result<Entry<'_>, ImaError> {
    if text.len() > MAX_LINE_LEN {
        return Err(err(
            line,
            ParseErrorKind::LineTooLong {
                len: text.len(),
                max: MAX_LINE_LEN,
            },
        ));
    }
    let missing = |f| err(line, ParseErrorKind::MissingField(f));
    let (pcr_s, rest) = split_space(text).ok_or_else(|| missing("template_hash"))?;
    let pcr = pcr_s
        .parse::<u32>()
        .ok()
        .filter(|&p| p < 24 && !pcr_s.starts_with('+'))
        .ok_or_else(|| err(line, ParseErrorKind::BadPcr(excerpt(pcr_s))))?;
    let (th_s, rest) = split_space(rest).ok_or_else(|| missing("template_name"))?;
    let template_hash = parse_hex_digest(line, "template_hash", th_s)?;
    let (tname, fields) = split_space(rest).ok_or_else(|| missing("file digest"))?;
    let template = Template::from_name(tname)
        .ok_or_else(|| err(line, ParseErrorKind::UnknownTemplate(excerpt(tname))))?;
    let (d_s, rest) = match split_space(fields) {
        Some(x) => x,
        None => return Err(missing("name")),
    };
    let mut entry = Entry {
        line,
        pcr,
        template_hash,
        template,
        digest: FileDigest {
            algorithm: None,
            digest: DigestBuf::zeros(0),
        },
        name: "",
        sig_hex: "",
        buf_hex: "",
        modsig_digest: None,
        modsig_hex: "",
    };
    match template {
        Template::Ima => {
            let digest = parse_hex_digest(line, "d", d_s)?;
            if digest.len() != 20 {
                return Err(err(
                    line,
                    ParseErrorKind::BadLength {
                        field: "d",
                        len: digest.len(),
                        expected: "20 (sha1)",
                    },
                ));
            }
            entry.digest = FileDigest {
                algorithm: None,
                digest,
            };
            if rest.len() > 255 {
                return Err(err(line, ParseErrorKind::NameTooLong { len: rest.len() }));
            }
            entry.name = rest;
        }
        Template::ImaNg => {
            entry.digest = parse_digest_ng(line, "d-ng", d_s)?;
            entry.name = rest;
        }
        Template::ImaSig => {
            entry.digest = parse_digest_ng(line, "d-ng", d_s)?;
            let (name, sig) = rsplit_space(rest);
            check_hex(line, "sig", sig)?;
            entry.name = name;
            entry.sig_hex = sig;
        }
        Template::ImaBuf => {
            entry.digest = parse_digest_ng(line, "d-ng", d_s)?;
            let (name, buf) = rest.rsplit_once(' ').ok_or_else(|| missing("buf"))?;
            check_hex(line, "buf", buf)?;
            entry.name = name;
            entry.buf_hex = buf;
        }
        Template::ImaModsig => {
            entry.digest = parse_digest_ng(line, "d-ng", d_s)?;
            let (rest, modsig) = rest.rsplit_once(' ').ok_or_else(|| missing("modsig"))?;
            let (rest, dmod) = rest.rsplit_once(' ').ok_or_else(|| missing("d-modsig"))?;
            let (name, sig) = rest.rsplit_once(' ').ok_or_else(|| missing("sig"))?;
            check_hex(line, "sig", sig)?;
            check_hex(line, "modsig", modsig)?;
            // an unsigned module has an empty d-modsig and modsig
            entry.modsig_digest = if dmod.is_empty() {
                None
            } else {
                Some(parse_digest_ng(line, "d-modsig", dmod)?)
            };
            entry.name = name;
            entry.sig_hex = sig;
            entry.modsig_hex = modsig;
        }
    }
    Ok(entry)
}

/// Iterator over the entries of an ASCII measurement list: splits on `\n`, drops a trailing
/// `\r`-free empty remainder and skips empty lines (line numbers still count them).
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    rest: &'a str,
    line: usize,
}

/// Parses `text` lazily; each item is one entry or the error of its line.
pub fn parse_log(text: &str) -> Entries<'_> {
    Entries {
        rest: text,
        line: 0,
    }
}

impl<'a> Entries<'a> {
    /// Like [`parse_log`], numbering lines from `first_line` (1-based) for errors.
    pub fn starting_at_line(text: &'a str, first_line: usize) -> Self {
        Entries {
            rest: text,
            line: first_line.saturating_sub(1),
        }
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, ImaError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (text, rest) = self.rest.split_once('\n').unwrap_or((self.rest, ""));
            self.rest = rest;
            self.line += 1;
            if text.is_empty() {
                continue;
            }
            return Some(parse_line(text, self.line));
        }
    }
}
