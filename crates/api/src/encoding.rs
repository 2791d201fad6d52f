//! Decoding of "binary" string fields as upstream's models read them (PROTOCOL.md §0.1):
//! strict standard base64 first, then hexadecimal with an optional `0x` prefix.
//!
//! Senders should always produce base64; the hex fallback exists only so that bodies
//! upstream accepts are accepted here too.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Why a binary string field could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryDecodeError {
    /// The field was neither valid padded base64 nor valid hexadecimal.
    #[error("value of {len} characters is neither valid base64 nor valid hex")]
    NotBase64OrHex {
        /// Length of the rejected text.
        len: usize,
    },
}

/// Decode a binary field: strict padded base64 (RFC 4648 §4), else hex (`0x` optional).
///
/// ```
/// assert_eq!(keylime_api::decode_binary("AAE=").unwrap(), vec![0, 1]);
/// assert_eq!(keylime_api::decode_binary("0x0a0b0").is_err(), true);
/// assert_eq!(keylime_api::decode_binary("0x0a0b").unwrap(), vec![10, 11]);
/// ```
pub fn decode_binary(text: &str) -> Result<Vec<u8>, BinaryDecodeError> {
    if let Ok(bytes) = STANDARD.decode(text) {
        return Ok(bytes);
    }
    let hex_text = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    hex::decode(hex_text).map_err(|_| BinaryDecodeError::NotBase64OrHex { len: text.len() })
}

/// Encode bytes as standard padded base64, the encoding every sender should use.
pub fn encode_b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_wins_over_hex_when_both_parse() {
        // "abcd" is valid b64 and valid hex; upstream reads it as b64.
        assert_eq!(
            decode_binary("abcd").unwrap(),
            STANDARD.decode("abcd").unwrap()
        );
    }

    #[test]
    fn hex_fallback_with_and_without_prefix() {
        assert_eq!(decode_binary("0xdeadbeef0").ok(), None);
        assert_eq!(
            decode_binary("0xDEADBEEF").unwrap(),
            vec![0xde, 0xad, 0xbe, 0xef]
        );
        assert_eq!(
            decode_binary("deadbeefff").unwrap(),
            vec![0xde, 0xad, 0xbe, 0xef, 0xff]
        );
    }

    #[test]
    fn garbage_is_rejected_with_length() {
        assert_eq!(
            decode_binary("not base64!"),
            Err(BinaryDecodeError::NotBase64OrHex { len: 11 })
        );
        // unpadded base64 is not strict base64 and not hex
        assert!(decode_binary("AAE").is_err());
    }

    #[test]
    fn round_trip() {
        let data = [0u8, 255, 17, 42];
        assert_eq!(decode_binary(&encode_b64(&data)).unwrap(), data);
    }
}
