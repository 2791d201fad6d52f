//! `TPMS_ATTEST`: the structure a TPM signs for Quote and Certify.
//!
//! Parsing only; signature checks must hash the exact input bytes (never re-marshal).

use crate::error::{Result, TpmError};
use crate::marshal::Reader;
use crate::pcr::PcrSelection;

/// `TPM_GENERATED_VALUE`: the magic of every TPM-produced attestation.
pub const TPM_GENERATED_VALUE: u32 = 0xFF54_4347;
/// `TPM_ST_ATTEST_CERTIFY`.
pub const ST_ATTEST_CERTIFY: u16 = 0x8017;
/// `TPM_ST_ATTEST_QUOTE`.
pub const ST_ATTEST_QUOTE: u16 = 0x8018;
/// Largest `TPMS_ATTEST` accepted.
pub const MAX_ATTEST: usize = 2048;
const MAX_NAME: usize = 2 + 64;
const MAX_DATA: usize = 2 + 64;
const MAX_DIGEST: usize = 64;

/// `TPMS_CLOCK_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockInfo {
    pub clock: u64,
    pub reset_count: u32,
    pub restart_count: u32,
    pub safe: bool,
}

/// The type-specific part of an attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttestBody {
    /// `TPMS_QUOTE_INFO`.
    Quote {
        pcr_select: Vec<PcrSelection>,
        pcr_digest: Vec<u8>,
    },
    /// `TPMS_CERTIFY_INFO`.
    Certify {
        name: Vec<u8>,
        qualified_name: Vec<u8>,
    },
    /// Any other attestation type, not decoded.
    Other(u16),
}

/// A parsed `TPMS_ATTEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attest {
    pub magic: u32,
    pub attest_type: u16,
    pub qualified_signer: Vec<u8>,
    pub extra_data: Vec<u8>,
    pub clock_info: ClockInfo,
    pub firmware_version: u64,
    pub body: AttestBody,
}

impl Attest {
    /// Parse a `TPMS_ATTEST` (the content of a `TPM2B_ATTEST`). The magic must be
    /// `TPM_GENERATED_VALUE`; quote and certify bodies must consume the whole input.
    pub fn parse(tpms_attest: &[u8]) -> Result<Attest> {
        if tpms_attest.len() > MAX_ATTEST {
            return Err(TpmError::SizeTooLarge {
                structure: "TPMS_ATTEST",
                offset: 0,
                size: tpms_attest.len(),
                max: MAX_ATTEST,
            });
        }
        let mut r = Reader::new(tpms_attest, "TPMS_ATTEST");
        let magic = r.u32()?;
        if magic != TPM_GENERATED_VALUE {
            return Err(r.bad_value("magic", 0, magic));
        }
        let attest_type = r.u16()?;
        let qualified_signer = r.tpm2b(MAX_NAME)?.to_vec();
        let extra_data = r.tpm2b(MAX_DATA)?.to_vec();
        r.structure = "TPMS_CLOCK_INFO";
        let clock = r.u64()?;
        let reset_count = r.u32()?;
        let restart_count = r.u32()?;
        let safe_at = r.offset();
        let safe = match r.u8()? {
            0 => false,
            1 => true,
            other => return Err(r.bad_value("safe", safe_at, other.into())),
        };
        r.structure = "TPMS_ATTEST";
        let firmware_version = r.u64()?;
        let body = match attest_type {
            ST_ATTEST_QUOTE => {
                r.structure = "TPMS_QUOTE_INFO";
                let pcr_select = PcrSelection::read_list(&mut r)?;
                let pcr_digest = r.tpm2b(MAX_DIGEST)?.to_vec();
                r.finish()?;
                AttestBody::Quote {
                    pcr_select,
                    pcr_digest,
                }
            }
            ST_ATTEST_CERTIFY => {
                r.structure = "TPMS_CERTIFY_INFO";
                let name = r.tpm2b(MAX_NAME)?.to_vec();
                let qualified_name = r.tpm2b(MAX_NAME)?.to_vec();
                r.finish()?;
                AttestBody::Certify {
                    name,
                    qualified_name,
                }
            }
            other => AttestBody::Other(other),
        };
        Ok(Attest {
            magic,
            attest_type,
            qualified_signer,
            extra_data,
            clock_info: ClockInfo {
                clock,
                reset_count,
                restart_count,
                safe,
            },
            firmware_version,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alg::HashAlg;
    use crate::marshal::Writer;

    pub(crate) fn sample_quote() -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(TPM_GENERATED_VALUE).u16(ST_ATTEST_QUOTE);
        w.tpm2b(&[0x00, 0x0B, 1, 2, 3]).tpm2b(b"nonce");
        w.bytes(&42u64.to_be_bytes()).u32(3).u32(4).u8(1);
        w.bytes(&7u64.to_be_bytes());
        PcrSelection::write_list(
            &[PcrSelection::new(HashAlg::Sha256, [0, 16]).unwrap()],
            &mut w,
        );
        w.tpm2b(&[9; 32]);
        w.into_vec()
    }

    #[test]
    fn parses_quote() {
        let a = Attest::parse(&sample_quote()).unwrap();
        assert_eq!(a.extra_data, b"nonce");
        assert_eq!(
            a.clock_info,
            ClockInfo {
                clock: 42,
                reset_count: 3,
                restart_count: 4,
                safe: true
            }
        );
        assert_eq!(a.firmware_version, 7);
        match a.body {
            AttestBody::Quote {
                pcr_select,
                pcr_digest,
            } => {
                assert_eq!(pcr_select[0].pcrs, vec![0, 16]);
                assert_eq!(pcr_digest, vec![9; 32]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_malformed() {
        let q = sample_quote();
        for len in 0..q.len() {
            assert!(Attest::parse(&q[..len]).is_err(), "accepted {len} bytes");
        }
        let mut bad = q.clone();
        bad[0] = 0;
        assert!(matches!(
            Attest::parse(&bad),
            Err(TpmError::BadValue {
                field: "magic",
                offset: 0,
                ..
            })
        ));
        let mut long = q.clone();
        long.push(0);
        assert!(matches!(
            Attest::parse(&long),
            Err(TpmError::TrailingBytes { .. })
        ));
        let mut unsafe_flag = q.clone();
        // magic 4 + type 2 + signer 2+5 + extra 2+5 + clock 8 + counters 8 = offset 36
        unsafe_flag[36] = 2;
        assert!(matches!(
            Attest::parse(&unsafe_flag),
            Err(TpmError::BadValue {
                field: "safe",
                offset: 36,
                ..
            })
        ));
    }
}
