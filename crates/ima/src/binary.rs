//! The binary measurement list (`binary_runtime_measurements`, little-endian): per record
//! `pcr u32`, `template digest [20]` (SHA-1), `name_len u32`, `name`, then for the legacy
//! `ima` template `d[20] ‖ n_len u32 ‖ n` and for every other template
//! `template_data_len u32 ‖ template_data`. Parsed without copying; lengths are bounded.

use crate::digest::DigestBuf;
use crate::entry::{MAX_LINE_LEN, Template};
use crate::error::{ImaError, ParseErrorKind};
use crate::template::TemplateRecord;

const MAX_TEMPLATE_NAME: usize = 255;
const IMA_NAME_FIELD: usize = 256;
static ZEROS: [u8; IMA_NAME_FIELD] = [0; IMA_NAME_FIELD];

/// One binary record, borrowing the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinaryEntry<'a> {
    /// 1-based record number.
    pub record: usize,
    /// Byte offset of the record.
    pub offset: usize,
    pub pcr: u32,
    /// The logged SHA-1 template hash (all zeros for a violation).
    pub template_hash: DigestBuf,
    /// The template name bytes (`ima-ng`, …).
    pub template_name: &'a [u8],
    /// For the `ima` template: `d[20] ‖ n_len u32 ‖ n` as stored; otherwise the template data.
    pub stored_data: &'a [u8],
}

impl BinaryEntry<'_> {
    /// The template, if its name is known.
    pub fn template(&self) -> Option<Template> {
        std::str::from_utf8(self.template_name)
            .ok()
            .and_then(Template::from_name)
    }

    fn is_legacy_ima(&self) -> bool {
        self.template_name == b"ima"
    }
}

impl TemplateRecord for BinaryEntry<'_> {
    fn logged_template_hash(&self) -> &DigestBuf {
        &self.template_hash
    }

    fn for_each_template_part<F: FnMut(&[u8])>(&self, mut sink: F) {
        if self.is_legacy_ima() {
            // the parser guarantees at least 24 bytes and a name of at most 255
            let d = self.stored_data.get(..20).unwrap_or_default();
            let n = self.stored_data.get(24..).unwrap_or_default();
            sink(d);
            sink(n);
            sink(&ZEROS[..IMA_NAME_FIELD.saturating_sub(n.len())]);
        } else {
            sink(self.stored_data);
        }
    }
}

/// Iterator over the records of a binary measurement list. After an error it stops.
#[derive(Debug, Clone)]
pub struct BinaryEntries<'a> {
    data: &'a [u8],
    pos: usize,
    record: usize,
    failed: bool,
}

/// Parses a binary measurement list lazily.
pub fn parse_binary_log(data: &[u8]) -> BinaryEntries<'_> {
    BinaryEntries {
        data,
        pos: 0,
        record: 0,
        failed: false,
    }
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], ParseErrorKind> {
        let have = self.data.len().saturating_sub(self.pos);
        if n > have {
            return Err(ParseErrorKind::Truncated {
                field,
                need: n,
                have,
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, ParseErrorKind> {
        let b = self.take(field, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn len(&mut self, field: &'static str, max: usize) -> Result<usize, ParseErrorKind> {
        let n = self.u32(field)? as usize;
        if n > max {
            return Err(ParseErrorKind::BadLength {
                field,
                len: n,
                expected: "within the record size limit",
            });
        }
        Ok(n)
    }
}

fn parse_record<'a>(
    data: &'a [u8],
    offset: usize,
    record: usize,
) -> Result<(BinaryEntry<'a>, usize), ParseErrorKind> {
    let mut c = Cursor { data, pos: offset };
    let pcr = c.u32("pcr")?;
    if pcr >= 24 {
        return Err(ParseErrorKind::BadPcr(pcr.to_string()));
    }
    let th = c.take("template digest", 20)?;
    let template_hash = DigestBuf::from_slice(th).unwrap_or(DigestBuf::zeros(20));
    let name_len = c.len("template name length", MAX_TEMPLATE_NAME)?;
    let template_name = c.take("template name", name_len)?;
    let mut start = c.pos;
    if template_name == b"ima" {
        c.take("d", 20)?;
        let n = c.len("n length", 255)?;
        c.take("n", n)?;
    } else {
        let n = c.len("template data length", MAX_LINE_LEN)?;
        start = c.pos;
        c.take("template data", n)?;
    }
    let entry = BinaryEntry {
        record,
        offset,
        pcr,
        template_hash,
        template_name,
        stored_data: &data[start..c.pos],
    };
    Ok((entry, c.pos))
}

impl<'a> Iterator for BinaryEntries<'a> {
    type Item = Result<BinaryEntry<'a>, ImaError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        self.record += 1;
        match parse_record(self.data, self.pos, self.record) {
            Ok((e, next)) => {
                self.pos = next;
                Some(Ok(e))
            }
            Err(kind) => {
                self.failed = true;
                Some(Err(ImaError::Binary {
                    record: self.record,
                    offset: self.pos,
                    kind,
                }))
            }
        }
    }
}
