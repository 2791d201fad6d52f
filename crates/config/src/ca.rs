//! `ca.conf`: the `[ca]` section (subject and lifetimes of certificates made
//! by the Keylime CA, PROTOCOL.md §9.4).

use crate::error::ConfigError;
use crate::ini::IniDocument;
use crate::reader::OptionReader;
use crate::sources::{ServiceComponent, Sources};

const S: &str = "ca";

/// Everything read from `ca.conf`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaConfig {
    /// `version`.
    pub version: String,
    /// `password` protecting the CA key store (`default` = upstream's fixed
    /// password keyword).
    pub password: String,
    /// `cert_country`.
    pub cert_country: String,
    /// `cert_ca_name`: common name of the CA.
    pub cert_ca_name: String,
    /// `cert_state`.
    pub cert_state: String,
    /// `cert_locality`.
    pub cert_locality: String,
    /// `cert_organization`.
    pub cert_organization: String,
    /// `cert_org_unit`.
    pub cert_org_unit: String,
    /// `cert_ca_lifetime` in days.
    pub cert_ca_lifetime: u32,
    /// `cert_lifetime` in days.
    pub cert_lifetime: u32,
    /// `cert_bits`: RSA key size.
    pub cert_bits: u32,
    /// `cert_crl_dist`: CRL distribution point URL.
    pub cert_crl_dist: String,
}

crate::service_loaders!(CaConfig, Ca);

impl CaConfig {
    /// Builds the configuration from merged files plus environment overrides.
    pub fn from_document(doc: &IniDocument, sources: &Sources) -> Result<Self, ConfigError> {
        let r = OptionReader::new(ServiceComponent::Ca, doc, sources);
        let config = CaConfig {
            version: r.string(S, "version", "2.6"),
            password: r.string(S, "password", "default"),
            cert_country: r.string(S, "cert_country", "US"),
            cert_ca_name: r.string(S, "cert_ca_name", "Keylime Certificate Authority"),
            cert_state: r.string(S, "cert_state", "MA"),
            cert_locality: r.string(S, "cert_locality", "Lexington"),
            cert_organization: r.string(S, "cert_organization", "Keylime"),
            cert_org_unit: r.string(S, "cert_org_unit", "53"),
            cert_ca_lifetime: r.int(S, "cert_ca_lifetime", 3650)?,
            cert_lifetime: r.int(S, "cert_lifetime", 365)?,
            cert_bits: r.int(S, "cert_bits", 2048)?,
            cert_crl_dist: r.string(S, "cert_crl_dist", "http://localhost:38080/crl"),
        };
        r.report_unknown(&[S]);
        Ok(config)
    }
}
