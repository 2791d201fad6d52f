//! TPM 2.0 response codes: the raw value plus a human-readable decoding.
//!
//! Kept as a raw `u32` so that codes unknown to this table are still reported exactly.

use std::fmt;

/// A TPM response code as returned in the response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseCode(pub u32);

/// `TPM_RC_SUCCESS`.
pub const RC_SUCCESS: u32 = 0;
/// `TPM_RC_INITIALIZE`: TPM2_Startup has not been run.
pub const RC_INITIALIZE: u32 = 0x100;
/// `TPM_RC_HANDLE` (format 1, before parameter/handle numbering).
pub const RC_HANDLE: u32 = 0x08B;
/// `TPM_RC_OBJECT_MEMORY`: out of object slots.
pub const RC_OBJECT_MEMORY: u32 = 0x902;
/// `TPM_RC_SESSION_MEMORY`: out of session slots.
pub const RC_SESSION_MEMORY: u32 = 0x903;
/// `TPM_RC_YIELDED`.
pub const RC_YIELDED: u32 = 0x908;
/// `TPM_RC_TESTING`.
pub const RC_TESTING: u32 = 0x90A;
/// `TPM_RC_LOCKOUT`: dictionary-attack lockout.
pub const RC_LOCKOUT: u32 = 0x921;
/// `TPM_RC_RETRY`.
pub const RC_RETRY: u32 = 0x922;
/// `TPM_RC_REFERENCE_H0`: the first handle of a command references no loaded object;
/// `..H6` follow it.
pub const RC_REFERENCE_H0: u32 = 0x910;
const RC_REFERENCE_H6: u32 = 0x916;

const FMT1: u32 = 0x080;

impl ResponseCode {
    /// Whether the command should simply be sent again (RETRY, YIELDED, TESTING).
    pub fn is_retryable(self) -> bool {
        matches!(self.0, RC_RETRY | RC_YIELDED | RC_TESTING)
    }

    /// Whether the TPM no longer knows what a client had set up: it was not started
    /// (`TPM_RC_INITIALIZE`, as after a reset), or a handle names nothing loaded
    /// (`TPM_RC_HANDLE`, `TPM_RC_REFERENCE_H0`..`H6`), as after a restart of the TPM or of
    /// its resource manager flushed the client's transient objects.
    pub fn is_lost_context(self) -> bool {
        matches!(self.base(), RC_INITIALIZE | RC_HANDLE)
            || (RC_REFERENCE_H0..=RC_REFERENCE_H6).contains(&self.0)
    }

    /// The code with handle/parameter/session numbering removed, for comparison with the
    /// `RC_*` constants.
    pub fn base(self) -> u32 {
        if self.0 & FMT1 != 0 {
            self.0 & 0xBF
        } else {
            self.0
        }
    }

    /// The symbolic name of the base code, when known.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.base() {
            0x000 => "TPM_RC_SUCCESS",
            0x100 => "TPM_RC_INITIALIZE",
            0x101 => "TPM_RC_FAILURE",
            0x103 => "TPM_RC_SEQUENCE",
            0x120 => "TPM_RC_DISABLED",
            0x121 => "TPM_RC_EXCLUSIVE",
            0x124 => "TPM_RC_AUTH_TYPE",
            0x125 => "TPM_RC_AUTH_MISSING",
            0x126 => "TPM_RC_POLICY",
            0x127 => "TPM_RC_PCR",
            0x128 => "TPM_RC_PCR_CHANGED",
            0x12E => "TPM_RC_TOO_MANY_CONTEXTS",
            0x12F => "TPM_RC_AUTH_UNAVAILABLE",
            0x130 => "TPM_RC_REBOOT",
            0x142 => "TPM_RC_COMMAND_SIZE",
            0x143 => "TPM_RC_COMMAND_CODE",
            0x144 => "TPM_RC_AUTHSIZE",
            0x145 => "TPM_RC_AUTH_CONTEXT",
            0x146 => "TPM_RC_NV_RANGE",
            0x147 => "TPM_RC_NV_SIZE",
            0x148 => "TPM_RC_NV_LOCKED",
            0x149 => "TPM_RC_NV_AUTHORIZATION",
            0x14A => "TPM_RC_NV_UNINITIALIZED",
            0x14B => "TPM_RC_NV_SPACE",
            0x14C => "TPM_RC_NV_DEFINED",
            0x150 => "TPM_RC_BAD_CONTEXT",
            0x151 => "TPM_RC_CPHASH",
            0x152 => "TPM_RC_PARENT",
            0x153 => "TPM_RC_NEEDS_TEST",
            0x154 => "TPM_RC_NO_RESULT",
            0x155 => "TPM_RC_SENSITIVE",
            0x081 => "TPM_RC_ASYMMETRIC",
            0x082 => "TPM_RC_ATTRIBUTES",
            0x083 => "TPM_RC_HASH",
            0x084 => "TPM_RC_VALUE",
            0x085 => "TPM_RC_HIERARCHY",
            0x087 => "TPM_RC_KEY_SIZE",
            0x088 => "TPM_RC_MGF",
            0x089 => "TPM_RC_MODE",
            0x08A => "TPM_RC_TYPE",
            0x08B => "TPM_RC_HANDLE",
            0x08C => "TPM_RC_KDF",
            0x08D => "TPM_RC_RANGE",
            0x08E => "TPM_RC_AUTH_FAIL",
            0x08F => "TPM_RC_NONCE",
            0x090 => "TPM_RC_PP",
            0x092 => "TPM_RC_SCHEME",
            0x095 => "TPM_RC_SIZE",
            0x096 => "TPM_RC_SYMMETRIC",
            0x097 => "TPM_RC_TAG",
            0x098 => "TPM_RC_SELECTOR",
            0x09A => "TPM_RC_INSUFFICIENT",
            0x09B => "TPM_RC_SIGNATURE",
            0x09C => "TPM_RC_KEY",
            0x09D => "TPM_RC_POLICY_FAIL",
            0x09F => "TPM_RC_INTEGRITY",
            0x0A0 => "TPM_RC_TICKET",
            0x0A1 => "TPM_RC_RESERVED_BITS",
            0x0A2 => "TPM_RC_BAD_AUTH",
            0x0A3 => "TPM_RC_EXPIRED",
            0x0A4 => "TPM_RC_POLICY_CC",
            0x0A5 => "TPM_RC_BINDING",
            0x0A6 => "TPM_RC_CURVE",
            0x0A7 => "TPM_RC_ECC_POINT",
            0x901 => "TPM_RC_CONTEXT_GAP",
            0x902 => "TPM_RC_OBJECT_MEMORY",
            0x903 => "TPM_RC_SESSION_MEMORY",
            0x904 => "TPM_RC_MEMORY",
            0x905 => "TPM_RC_SESSION_HANDLES",
            0x906 => "TPM_RC_OBJECT_HANDLES",
            0x907 => "TPM_RC_LOCALITY",
            0x908 => "TPM_RC_YIELDED",
            0x909 => "TPM_RC_CANCELED",
            0x90A => "TPM_RC_TESTING",
            0x920 => "TPM_RC_NV_RATE",
            0x921 => "TPM_RC_LOCKOUT",
            0x922 => "TPM_RC_RETRY",
            0x923 => "TPM_RC_NV_UNAVAILABLE",
            _ => return None,
        })
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:03x}", self.0)?;
        if let Some(name) = self.name() {
            write!(f, " {name}")?;
        }
        if self.0 & FMT1 != 0 {
            let n = (self.0 >> 8) & 0xF;
            if self.0 & 0x40 != 0 {
                write!(f, " (parameter {n})")?;
            } else if n & 0x8 != 0 {
                write!(f, " (session {})", n & 0x7)?;
            } else if n != 0 {
                write!(f, " (handle {n})")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format1_codes_decode_their_position() {
        let rc = ResponseCode(0x18B);
        assert_eq!(rc.base(), RC_HANDLE);
        assert_eq!(rc.to_string(), "0x18b TPM_RC_HANDLE (handle 1)");
        assert_eq!(
            ResponseCode(0x2C4).to_string(),
            "0x2c4 TPM_RC_VALUE (parameter 2)"
        );
        assert_eq!(
            ResponseCode(0x98E).to_string(),
            "0x98e TPM_RC_AUTH_FAIL (session 1)"
        );
        assert!(ResponseCode(RC_RETRY).is_retryable());
        assert!(!ResponseCode(RC_LOCKOUT).is_retryable());
    }

    #[test]
    fn lost_context_codes() {
        for lost in [RC_INITIALIZE, 0x18B, 0x28B, RC_REFERENCE_H0, 0x916] {
            assert!(ResponseCode(lost).is_lost_context(), "{lost:#x}");
        }
        for kept in [RC_RETRY, RC_LOCKOUT, 0x2C4, 0x98E, 0x917, RC_OBJECT_MEMORY] {
            assert!(!ResponseCode(kept).is_lost_context(), "{kept:#x}");
        }
    }
}
