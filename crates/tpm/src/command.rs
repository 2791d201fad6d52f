//! TPM command framing: command codes, handles, authorization areas, and splitting a
//! response into handles and parameters.

use crate::error::{Result, TpmError};
use crate::marshal::{Reader, Writer};
use crate::rc::ResponseCode;

/// `TPM_ST_NO_SESSIONS`.
pub const ST_NO_SESSIONS: u16 = 0x8001;
/// `TPM_ST_SESSIONS`.
pub const ST_SESSIONS: u16 = 0x8002;

/// `TPM_CC_*` command codes used by this crate.
pub mod cc {
    pub const NV_UNDEFINE_SPACE: u32 = 0x122;
    pub const EVICT_CONTROL: u32 = 0x120;
    pub const CLEAR: u32 = 0x126;
    pub const DICTIONARY_ATTACK_LOCK_RESET: u32 = 0x139;
    pub const PCR_RESET: u32 = 0x13D;
    pub const CREATE_PRIMARY: u32 = 0x131;
    pub const STARTUP: u32 = 0x144;
    pub const SHUTDOWN: u32 = 0x145;
    pub const ACTIVATE_CREDENTIAL: u32 = 0x147;
    pub const CERTIFY: u32 = 0x148;
    pub const NV_READ: u32 = 0x14E;
    pub const POLICY_SECRET: u32 = 0x151;
    pub const CREATE: u32 = 0x153;
    pub const LOAD: u32 = 0x157;
    pub const QUOTE: u32 = 0x158;
    pub const FLUSH_CONTEXT: u32 = 0x165;
    pub const NV_READ_PUBLIC: u32 = 0x169;
    pub const READ_PUBLIC: u32 = 0x173;
    pub const START_AUTH_SESSION: u32 = 0x176;
    pub const GET_CAPABILITY: u32 = 0x17A;
    pub const GET_RANDOM: u32 = 0x17B;
    pub const PCR_READ: u32 = 0x17E;
    pub const PCR_EXTEND: u32 = 0x182;
}

/// Permanent handles and handle-type prefixes.
pub mod handle {
    pub const RH_OWNER: u32 = 0x4000_0001;
    pub const RH_NULL: u32 = 0x4000_0007;
    pub const RS_PW: u32 = 0x4000_0009;
    pub const RH_LOCKOUT: u32 = 0x4000_000A;
    pub const RH_ENDORSEMENT: u32 = 0x4000_000B;
    pub const RH_PLATFORM: u32 = 0x4000_000C;
    /// First handle of each type (`TPM_HT_* << 24`).
    pub const NV_INDEX_FIRST: u32 = 0x0100_0000;
    pub const LOADED_SESSION_FIRST: u32 = 0x0200_0000;
    pub const SAVED_SESSION_FIRST: u32 = 0x0300_0000;
    pub const TRANSIENT_FIRST: u32 = 0x8000_0000;
    pub const PERSISTENT_FIRST: u32 = 0x8100_0000;
}

/// An authorization for one handle of a command.
#[derive(Debug, Clone)]
pub(crate) enum Auth {
    /// Password session (`TPM_RS_PW`) with this password (usually empty).
    Password(Vec<u8>),
    /// A policy session already satisfied; it is flushed by the TPM after a successful
    /// command (continueSession clear).
    Policy(u32),
}

/// One TPM command under construction.
#[derive(Debug)]
pub(crate) struct Command {
    pub name: &'static str,
    code: u32,
    handles: Vec<u32>,
    auths: Vec<Auth>,
    pub params: Writer,
}

impl Command {
    pub fn new(name: &'static str, code: u32) -> Self {
        Command {
            name,
            code,
            handles: Vec::new(),
            auths: Vec::new(),
            params: Writer::new(),
        }
    }

    pub fn handle(mut self, h: u32) -> Self {
        self.handles.push(h);
        self
    }

    pub fn auth(mut self, a: Auth) -> Self {
        self.auths.push(a);
        self
    }

    pub fn has_sessions(&self) -> bool {
        !self.auths.is_empty()
    }

    /// Policy sessions this command consumes (to flush if the command fails).
    pub fn policy_sessions(&self) -> impl Iterator<Item = u32> + '_ {
        self.auths.iter().filter_map(|a| match a {
            Auth::Policy(h) => Some(*h),
            Auth::Password(_) => None,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        let tag = if self.has_sessions() {
            ST_SESSIONS
        } else {
            ST_NO_SESSIONS
        };
        w.u16(tag).u32(0).u32(self.code);
        for h in &self.handles {
            w.u32(*h);
        }
        if self.has_sessions() {
            let mut area = Writer::new();
            for a in &self.auths {
                match a {
                    Auth::Password(pw) => area.u32(handle::RS_PW).tpm2b(&[]).u8(0x01).tpm2b(pw),
                    Auth::Policy(s) => area.u32(*s).tpm2b(&[]).u8(0x00).tpm2b(&[]),
                };
            }
            w.u32(area.buf.len() as u32).bytes(&area.buf);
        }
        w.bytes(&self.params.buf);
        let size = (w.buf.len() as u32).to_be_bytes();
        w.buf[2..6].copy_from_slice(&size);
        w.into_vec()
    }
}

/// A successful response split into its parts.
#[derive(Debug)]
pub(crate) struct Response {
    pub handles: Vec<u32>,
    pub params: Vec<u8>,
}

/// The response code of a raw response, checking only the header.
pub(crate) fn response_code(command: &'static str, bytes: &[u8]) -> Result<ResponseCode> {
    let mut r = Reader::new(bytes, "TPM response header");
    let bad = |e: TpmError| TpmError::BadResponse {
        command,
        reason: e.to_string(),
    };
    let _tag = r.u16().map_err(bad)?;
    let size = r.u32().map_err(bad)? as usize;
    if size != bytes.len() {
        return Err(TpmError::BadResponse {
            command,
            reason: format!("size field {size} but {} bytes received", bytes.len()),
        });
    }
    Ok(ResponseCode(r.u32().map_err(bad)?))
}

/// Split a successful response with `n_handles` handles into handles and parameters.
pub(crate) fn split_response(
    command: &'static str,
    bytes: &[u8],
    n_handles: usize,
) -> Result<Response> {
    let bad = |e: TpmError| TpmError::BadResponse {
        command,
        reason: e.to_string(),
    };
    let mut r = Reader::new(bytes, "TPM response");
    let tag = r.u16().map_err(bad)?;
    r.u32().map_err(bad)?;
    r.u32().map_err(bad)?;
    let handles = (0..n_handles)
        .map(|_| r.u32())
        .collect::<Result<Vec<_>>>()
        .map_err(bad)?;
    let params = match tag {
        ST_NO_SESSIONS => r.rest().to_vec(),
        ST_SESSIONS => {
            let n = r.u32().map_err(bad)? as usize;
            // The response authorization area that follows is not needed for password and
            // policy sessions.
            r.bytes(n).map_err(bad)?.to_vec()
        }
        other => {
            return Err(TpmError::BadResponse {
                command,
                reason: format!("unknown response tag 0x{other:04x}"),
            });
        }
    };
    Ok(Response { handles, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_a_command_with_password_auth() {
        let mut c = Command::new("PCR_Reset", cc::PCR_RESET)
            .handle(16)
            .auth(Auth::Password(vec![]));
        c.params.u8(0xAB);
        assert_eq!(
            c.to_bytes(),
            [
                0x80, 0x02, 0, 0, 0, 0x1C, 0, 0, 0x01, 0x3D, 0, 0, 0, 16, 0, 0, 0, 9, 0x40, 0, 0,
                9, 0, 0, 1, 0, 0, 0xAB
            ]
        );
    }

    #[test]
    fn splits_responses() {
        let resp = [
            0x80, 0x02, 0, 0, 0, 0x17, 0, 0, 0, 0, 0x80, 0, 0, 1, 0, 0, 0, 2, 0xAA, 0xBB, 0, 0, 1,
        ];
        let r = split_response("X", &resp, 1).unwrap();
        assert_eq!(r.handles, vec![0x8000_0001]);
        assert_eq!(r.params, vec![0xAA, 0xBB]);
        assert_eq!(response_code("X", &resp).unwrap(), ResponseCode(0));
        assert!(response_code("X", &resp[..20]).is_err());
        let bad_tag = [0x12, 0x34, 0, 0, 0, 10, 0, 0, 0, 0];
        assert!(split_response("X", &bad_tag, 0).is_err());
    }
}
