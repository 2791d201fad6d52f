//! `[verifier]` options of the public `POST /verify/evidence` route. Upstream has no
//! options for it (it is always public and shares `max_upload_size`); the names are ours.

use crate::error::ConfigError;
use crate::reader::OptionReader;
use crate::values;

/// Who may call `/verify/evidence` (`verify_evidence`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvidenceAccess {
    /// Anyone (`public`, upstream's behaviour).
    Public,
    /// Only clients presenting a certificate from `trusted_client_ca` (`mtls`).
    Mtls,
    /// Nobody: the route answers 404 (`disabled`).
    Disabled,
}

/// Limits of `/verify/evidence`.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyEvidenceConfig {
    /// `verify_evidence`: `public`, `mtls` or `disabled`.
    pub access: EvidenceAccess,
    /// `verify_evidence_max_size`: largest request body in bytes.
    pub max_size: u64,
    /// `verify_evidence_timeout`: seconds to receive the whole body.
    pub timeout: f64,
    /// `verify_evidence_max_in_flight`: requests read or evaluated at once; more get 429.
    pub max_in_flight: usize,
    /// `verify_evidence_max_excludes`: `excludes` patterns in a runtime policy.
    pub max_excludes: usize,
    /// `verify_evidence_max_exclude_bytes`: their total length.
    pub max_exclude_bytes: usize,
    /// `verify_evidence_max_policy_entries`: digest entries of a runtime policy (`digests`,
    /// `keyrings`, `ima-buf` together).
    pub max_policy_entries: usize,
}

impl Default for VerifyEvidenceConfig {
    fn default() -> Self {
        VerifyEvidenceConfig {
            access: EvidenceAccess::Public,
            max_size: 16 << 20,
            timeout: 30.0,
            max_in_flight: 4,
            max_excludes: 1000,
            max_exclude_bytes: 64 << 10,
            max_policy_entries: 100_000,
        }
    }
}

impl VerifyEvidenceConfig {
    pub(crate) fn read(r: &OptionReader<'_>, section: &str) -> Result<Self, ConfigError> {
        let d = VerifyEvidenceConfig::default();
        Ok(VerifyEvidenceConfig {
            access: r.parsed(
                section,
                "verify_evidence",
                d.access,
                |raw| match values::unquote(raw) {
                    "public" => Ok(EvidenceAccess::Public),
                    "mtls" => Ok(EvidenceAccess::Mtls),
                    "disabled" => Ok(EvidenceAccess::Disabled),
                    _ => Err(format!(
                        "expected `public`, `mtls` or `disabled`, found {raw:?}"
                    )),
                },
            )?,
            max_size: r.int(section, "verify_evidence_max_size", d.max_size)?,
            timeout: r.parsed(section, "verify_evidence_timeout", d.timeout, |raw| {
                match values::parse_seconds(raw)? {
                    v if v > 0.0 => Ok(v),
                    _ => Err(format!(
                        "expected a positive number of seconds, found {raw:?}"
                    )),
                }
            })?,
            max_in_flight: r.parsed(
                section,
                "verify_evidence_max_in_flight",
                d.max_in_flight,
                |raw| match values::parse_int::<usize>(raw)? {
                    0 => {
                        Err("expected at least 1, found 0 (use verify_evidence = disabled)".into())
                    }
                    n => Ok(n),
                },
            )?,
            max_excludes: r.int(section, "verify_evidence_max_excludes", d.max_excludes)?,
            max_exclude_bytes: r.int(
                section,
                "verify_evidence_max_exclude_bytes",
                d.max_exclude_bytes,
            )?,
            max_policy_entries: r.int(
                section,
                "verify_evidence_max_policy_entries",
                d.max_policy_entries,
            )?,
        })
    }
}
