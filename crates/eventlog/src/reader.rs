//! A bounds-checked little-endian cursor over untrusted bytes; every read reports the
//! offset at which the input ran out instead of panicking.

/// Cursor position and the remaining input; `base` is added to offsets in errors.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

/// What a read needed when the input ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short {
    pub offset: usize,
    pub what: &'static str,
    pub needed: u64,
    pub available: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }

    /// Take `len` bytes; `len` is checked against the input before anything is sliced.
    pub fn take(&mut self, len: u64, what: &'static str) -> Result<&'a [u8], Short> {
        let available = self.remaining();
        let short = Short {
            offset: self.pos,
            what,
            needed: len,
            available,
        };
        let n = usize::try_from(len).map_err(|_| short)?;
        if n > available {
            return Err(short);
        }
        let out = self.data.get(self.pos..self.pos + n).ok_or(short)?;
        self.pos += n;
        Ok(out)
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Short> {
        let s = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, Short> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, Short> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, Short> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, Short> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
}
