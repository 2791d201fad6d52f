//! Path segments as the services see them: percent-decoded into UTF-8, as upstream's
//! tornado handlers decode their path arguments, so an id registered as `ägent2` is reached
//! through `/agents/%C3%A4gent2` and `%41BC` names the same agent as `ABC`. Segments are
//! split on the raw `/` first, so an encoded `%2F` stays inside its segment.

/// Why a path segment cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathSegmentError {
    /// A `%` not followed by two hex digits.
    #[error("path segment '{segment}' has a malformed percent escape at byte {offset}")]
    BadEscape { segment: String, offset: usize },
    /// The decoded bytes are not UTF-8.
    #[error("path segment '{segment}' does not decode to UTF-8 text")]
    NotUtf8 { segment: String },
}

/// Longest segment echoed back in an error.
const MAX_ECHO: usize = 128;

/// Decodes `%XX` escapes in one path segment (`+` stays `+`, as in a path).
pub fn decode_segment(segment: &str) -> Result<String, PathSegmentError> {
    if !segment.contains('%') {
        return Ok(segment.to_owned());
    }
    let echo = || segment.chars().take(MAX_ECHO).collect::<String>();
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
        match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (Some(hi), Some(lo)) => {
                // Two hex digits are at most 0xff.
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(u8::MAX));
                i += 3;
            }
            _ => {
                return Err(PathSegmentError::BadEscape {
                    segment: echo(),
                    offset: i,
                });
            }
        }
    }
    String::from_utf8(out).map_err(|_| PathSegmentError::NotUtf8 { segment: echo() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(decode_segment("%41BC").unwrap(), "ABC");
        assert_eq!(decode_segment("%C3%a4gent2").unwrap(), "ägent2");
        assert_eq!(decode_segment("a+b%20c").unwrap(), "a+b c");
        assert_eq!(decode_segment("a%2Fb").unwrap(), "a/b");
        assert_eq!(decode_segment("plain-id").unwrap(), "plain-id");
        assert_eq!(decode_segment("").unwrap(), "");
    }

    #[test]
    fn malformed_escapes_and_bad_utf8_are_errors() {
        for bad in ["%", "%4", "%zz", "ab%4g", "%%41"] {
            assert!(
                matches!(decode_segment(bad), Err(PathSegmentError::BadEscape { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            decode_segment("%C3"),
            Err(PathSegmentError::NotUtf8 { .. })
        ));
        assert!(matches!(
            decode_segment("%ff%fe"),
            Err(PathSegmentError::NotUtf8 { .. })
        ));
    }
}
