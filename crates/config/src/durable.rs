//! Durable-attestation options shared by `[verifier]` and `[registrar]`
//! (PROTOCOL.md §9.5).

use crate::error::ConfigError;
use crate::reader::OptionReader;

/// Durable attestation (persistent store, transparency log, timestamping).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurableAttestationConfig {
    /// `durable_attestation_import`: upstream's Python adapter module; empty = off.
    pub import: String,
    /// `persistent_store_url`.
    pub persistent_store_url: String,
    /// `transparency_log_url`.
    pub transparency_log_url: String,
    /// `time_stamp_authority_url`.
    pub time_stamp_authority_url: String,
    /// `time_stamp_authority_certs_path`.
    pub time_stamp_authority_certs_path: String,
    /// `persistent_store_format` (`json` | `pickle`).
    pub persistent_store_format: String,
    /// `persistent_store_encoding` (empty | `base64`).
    pub persistent_store_encoding: String,
    /// `transparency_log_sign_algo`.
    pub transparency_log_sign_algo: String,
    /// `signed_attributes` (comma list; `all` signs everything; empty signs nothing).
    pub signed_attributes: Vec<String>,
}

impl DurableAttestationConfig {
    /// Whether durable attestation is switched on.
    pub fn enabled(&self) -> bool {
        !self.import.is_empty()
    }

    pub(crate) fn read(
        r: &OptionReader<'_>,
        section: &str,
        default_signed_attributes: &[&str],
    ) -> Result<Self, ConfigError> {
        Ok(DurableAttestationConfig {
            import: r.string(section, "durable_attestation_import", ""),
            persistent_store_url: r.string(section, "persistent_store_url", ""),
            transparency_log_url: r.string(section, "transparency_log_url", ""),
            time_stamp_authority_url: r.string(section, "time_stamp_authority_url", ""),
            time_stamp_authority_certs_path: r.string(
                section,
                "time_stamp_authority_certs_path",
                "",
            ),
            persistent_store_format: r.string(section, "persistent_store_format", "json"),
            persistent_store_encoding: r.string(section, "persistent_store_encoding", ""),
            transparency_log_sign_algo: r.string(section, "transparency_log_sign_algo", "sha256"),
            signed_attributes: r.list(section, "signed_attributes", default_signed_attributes)?,
        })
    }
}
