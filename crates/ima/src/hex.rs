//! Hex decoding into caller buffers, without allocation.

const INVALID: u8 = 0xFF;

const fn table() -> [u8; 256] {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
}

static HEX: [u8; 256] = table();

/// Decodes `hex` (even length, `out.len() * 2` chars) into `out`; `Err(offset)` names the
/// first bad character (or the length, if odd/mismatched).
#[inline]
pub(crate) fn decode_into(hex: &[u8], out: &mut [u8]) -> Result<(), usize> {
    if hex.len() != out.len() * 2 {
        return Err(hex.len());
    }
    // branch-free: every valid nibble is < 16, INVALID sets the high bits
    let mut seen = 0u8;
    for (pair, o) in hex.chunks_exact(2).zip(out.iter_mut()) {
        let hi = HEX[usize::from(pair[0])];
        let lo = HEX[usize::from(pair[1])];
        seen |= hi | lo;
        *o = (hi << 4) | lo;
    }
    if seen & 0xF0 != 0 {
        return validate(hex);
    }
    Ok(())
}

/// Checks that `hex` is valid hex of even length; `Err(offset)` as [`decode_into`].
pub(crate) fn validate(hex: &[u8]) -> Result<(), usize> {
    if !hex.len().is_multiple_of(2) {
        return Err(hex.len());
    }
    match hex.iter().position(|&c| HEX[usize::from(c)] == INVALID) {
        Some(i) => Err(i),
        None => Ok(()),
    }
}

/// Streams the decoded bytes of already-validated `hex` to `sink` in stack-sized chunks.
pub(crate) fn decode_chunks(hex: &[u8], mut sink: impl FnMut(&[u8])) {
    let mut buf = [0u8; 512];
    for chunk in hex.chunks(buf.len() * 2) {
        let n = chunk.len() / 2;
        // validated by the parser; a bad pair would only yield garbage bytes, never a panic
        let _ = decode_into(&chunk[..n * 2], &mut buf[..n]);
        sink(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_reports_offsets() {
        let mut out = [0u8; 2];
        assert_eq!(decode_into(b"aBff", &mut out), Ok(()));
        assert_eq!(out, [0xab, 0xff]);
        assert_eq!(decode_into(b"azff", &mut out), Err(1));
        assert_eq!(decode_into(b"abf", &mut out), Err(3));
        assert_eq!(validate(b"0g"), Err(1));
        assert_eq!(validate(b"0"), Err(1));
        let mut got = Vec::new();
        let long = "ab".repeat(1500);
        decode_chunks(long.as_bytes(), |c| got.extend_from_slice(c));
        assert_eq!(got, vec![0xab; 1500]);
    }
}
