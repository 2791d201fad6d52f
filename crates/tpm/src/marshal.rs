//! Bounded big-endian reader and writer for TPM canonical marshalling.
//!
//! The reader never panics: every short read, oversized `TPM2B` and trailing byte becomes a
//! [`TpmError`] naming the structure being decoded and the absolute offset in the input.

use crate::error::{Result, TpmError};

/// Cursor over untrusted bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` within the outermost input, for error messages.
    base: usize,
    /// Name of the structure currently being decoded, for error messages.
    pub structure: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over the whole of `buf`.
    pub fn new(buf: &'a [u8], structure: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            base: 0,
            structure,
        }
    }

    /// Absolute offset of the next byte.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The unread rest of the input.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Read `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(TpmError::Truncated {
                structure: self.structure,
                offset: self.offset(),
                needed: n,
                available: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub fn u16_le(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub fn u32_le(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Read a `TPM2B`: a u16 size then that many bytes, at most `max`.
    pub fn tpm2b(&mut self, max: usize) -> Result<&'a [u8]> {
        let at = self.offset();
        let size = usize::from(self.u16()?);
        if size > max {
            return Err(TpmError::SizeTooLarge {
                structure: self.structure,
                offset: at,
                size,
                max,
            });
        }
        self.bytes(size)
    }

    /// Read a `TPM2B` and return a reader over its content, keeping absolute offsets.
    pub fn tpm2b_reader(&mut self, max: usize, structure: &'static str) -> Result<Reader<'a>> {
        let prev = self.structure;
        self.structure = structure;
        let start = self.offset() + 2;
        let content = self.tpm2b(max);
        self.structure = prev;
        Ok(Reader {
            buf: content?,
            pos: 0,
            base: start,
            structure,
        })
    }

    /// A `u32` element count, at most `max`.
    pub fn count(&mut self, max: usize) -> Result<usize> {
        let at = self.offset();
        let n = self.u32()? as usize;
        if n > max {
            return Err(TpmError::SizeTooLarge {
                structure: self.structure,
                offset: at,
                size: n,
                max,
            });
        }
        Ok(n)
    }

    /// Error for a field value this structure does not allow; `at` is the field's offset.
    pub fn bad_value(&self, field: &'static str, at: usize, value: u32) -> TpmError {
        TpmError::BadValue {
            structure: self.structure,
            field,
            offset: at,
            value,
        }
    }

    /// Fail unless the whole input has been consumed.
    pub fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(TpmError::TrailingBytes {
                structure: self.structure,
                offset: self.offset(),
                remaining: self.remaining(),
            });
        }
        Ok(())
    }
}

/// Big-endian writer for building TPM structures and commands.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// Write a `TPM2B`. Panics only on caller bugs (content over 65535 bytes), never on peer
    /// data: every caller passes locally built or length-checked content.
    pub fn tpm2b(&mut self, b: &[u8]) -> &mut Self {
        let len = u16::try_from(b.len()).expect("TPM2B content over 65535 bytes");
        self.u16(len).bytes(b)
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// Length-check then prefix, for content that may come from a caller.
pub fn tpm2b_checked(structure: &'static str, b: &[u8], max: usize) -> Result<Vec<u8>> {
    if b.len() > max {
        return Err(TpmError::SizeTooLarge {
            structure,
            offset: 0,
            size: b.len(),
            max,
        });
    }
    let mut w = Writer::new();
    w.tpm2b(b);
    Ok(w.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_read_reports_offset_and_structure() {
        let mut r = Reader::new(&[0, 1, 2], "TEST");
        r.u16().unwrap();
        match r.u32() {
            Err(TpmError::Truncated {
                structure,
                offset,
                needed,
                available,
            }) => {
                assert_eq!((structure, offset, needed, available), ("TEST", 2, 4, 1));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn nested_tpm2b_keeps_absolute_offsets() {
        let data = [0xAA, 0x00, 0x01, 0x07];
        let mut r = Reader::new(&data, "OUTER");
        r.u8().unwrap();
        let mut inner = r.tpm2b_reader(10, "INNER").unwrap();
        assert_eq!(inner.u8().unwrap(), 7);
        let err = inner.u8().unwrap_err();
        assert!(
            matches!(
                err,
                TpmError::Truncated {
                    structure: "INNER",
                    offset: 4,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn oversized_tpm2b_is_rejected() {
        let data = [0x00, 0x05, 1, 2];
        let err = Reader::new(&data, "X").tpm2b(64).unwrap_err();
        assert!(matches!(err, TpmError::Truncated { .. }));
        let err = Reader::new(&data, "X").tpm2b(4).unwrap_err();
        assert!(matches!(
            err,
            TpmError::SizeTooLarge {
                size: 5,
                max: 4,
                ..
            }
        ));
    }
}
