//! Checks a registration body must pass before anything is stored (PROTOCOL.md §2.2):
//! the agent id, the EK and AK as TPM2B_PUBLIC, the AK's attributes (a restricted signing
//! key), the EK certificate (first of a PEM bundle; its key must be the EK's; its chain
//! against the TPM cert store when required), the agent's mTLS certificate and IAK/IDevID
//! certificates. Pure functions over the request; no I/O except the loaded cert store.

use crate::vendor_cas::VendorCaStore;
use keylime_api::{RegisterRequest, decode_binary};
use keylime_store::registrar::MAX_IP_CHARS;
use keylime_tpm::Public;

pub use keylime_api::MAX_AGENT_ID_CHARS;

/// TPM2 object attribute bits (TPMA_OBJECT).
const TPMA_RESTRICTED: u32 = 1 << 16;
const TPMA_DECRYPT: u32 = 1 << 17;
const TPMA_SIGN_ENCRYPT: u32 = 1 << 18;

/// `[registrar] tpm_identity`: which root identity a registration must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TpmIdentity {
    /// `default` / `ek_cert_or_iak_idevid`: EK, or IAK + IDevID.
    #[default]
    EkCertOrIakIdevid,
    /// `ek_cert`: an EK is required.
    EkCert,
    /// `iak_idevid`: IAK and IDevID are required.
    IakIdevid,
}

impl TpmIdentity {
    /// Parse the upstream option value.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "" | "default" | "ek_cert_or_iak_idevid" => Some(Self::EkCertOrIakIdevid),
            "ek_cert" => Some(Self::EkCert),
            "iak_idevid" => Some(Self::IakIdevid),
            _ => None,
        }
    }
}

/// What a registration is checked against.
#[derive(Debug, Default)]
pub struct RegistrationPolicy {
    /// `[tenant] require_ek_cert`: an EK certificate must be sent and chain to the store.
    pub require_ek_cert: bool,
    /// `[registrar] tpm_identity`.
    pub tpm_identity: TpmIdentity,
    /// The TPM vendor CAs (`[tenant] tpm_cert_store`), re-read when the directory changes.
    pub cert_store: Option<VendorCaStore>,
}

/// Why a registration body was refused. Each message names the field and the defect.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// No usable agent id.
    #[error("agent id is missing (give it in the path or as 'agent_id')")]
    MissingAgentId,
    /// The id is too long or has characters outside upstream's rule.
    #[error(
        "agent id must be 1-{MAX_AGENT_ID_CHARS} letters, digits, '_', '.' or '-' \
         (no whitespace)"
    )]
    BadAgentId,
    /// The contact address is unusable.
    #[error("'ip' must be 1-{MAX_IP_CHARS} characters without whitespace or control characters")]
    BadIp,
    /// The contact port is 0.
    #[error("'port' must be in 1-65535, got 0")]
    PortZero,
    /// A required field is absent.
    #[error("'{field}' is required{why}")]
    Missing {
        /// The field.
        field: &'static str,
        /// Why it is required (may be empty).
        why: &'static str,
    },
    /// A binary field is not base64/hex.
    #[error("'{field}' is not valid base64: {reason}")]
    Encoding {
        /// The field.
        field: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// A TPM2B_PUBLIC did not parse.
    #[error("'{field}' must be a valid TPM2B_PUBLIC structure: {reason}")]
    TpmPublic {
        /// The field.
        field: &'static str,
        /// The parser's complaint.
        reason: String,
    },
    /// The AK is not a restricted signing key.
    #[error(
        "'aik_tpm' must be a restricted signing key that cannot decrypt (attributes 0x{attributes:08x})"
    )]
    AkNotRestrictedSigning {
        /// The AK's TPMA_OBJECT.
        attributes: u32,
    },
    /// A certificate did not parse.
    #[error("'{field}' is not a valid certificate: {reason}")]
    Certificate {
        /// The field.
        field: &'static str,
        /// The parser's complaint.
        reason: String,
    },
    /// The certificate's key is not the TPM key's.
    #[error("'{key_field}' must contain the same public key found in '{cert_field}'")]
    KeyMismatch {
        /// The TPM key field.
        key_field: &'static str,
        /// The certificate field.
        cert_field: &'static str,
    },
    /// No TPM cert store is configured but a chain check is needed.
    #[error("'{field}' cannot be verified: no tpm_cert_store is configured")]
    NoCertStore {
        /// The certificate field.
        field: &'static str,
    },
    /// The certificate does not chain to the TPM cert store.
    #[error(
        "'{field}' must contain a certificate issued by a CA present in the trust store: {reason}"
    )]
    Untrusted {
        /// The certificate field.
        field: &'static str,
        /// The chain checker's complaint.
        reason: String,
    },
}

/// An IAK or IDevID: its TPM2B_PUBLIC and the DER of its certificate.
#[derive(Debug, Clone)]
pub struct KeyAndCert {
    /// TPM2B_PUBLIC bytes.
    pub tpm2b: Vec<u8>,
    /// Certificate DER.
    pub cert_der: Vec<u8>,
}

/// A registration that passed every check, ready for MakeCredential and storage.
#[derive(Debug)]
pub struct CheckedRegistration {
    /// The agent id (path id wins over the body's).
    pub agent_id: String,
    /// The parsed EK.
    pub ek: Public,
    /// TPM2B_PUBLIC bytes of the EK.
    pub ek_tpm: Vec<u8>,
    /// The parsed AK.
    pub ak: Public,
    /// TPM2B_PUBLIC bytes of the AK.
    pub aik_tpm: Vec<u8>,
    /// DER of the EK certificate (first of the bundle).
    pub ekcert: Option<Vec<u8>>,
    /// The IAK, if sent.
    pub iak: Option<KeyAndCert>,
    /// The IDevID key, if sent.
    pub idevid: Option<KeyAndCert>,
    /// The agent's server certificate as PEM, or `"disabled"`.
    pub mtls_cert: Option<String>,
}

/// Run every check of §2.2 on `req`.
pub fn check_registration(
    path_id: Option<&str>,
    req: &RegisterRequest,
    policy: &RegistrationPolicy,
) -> Result<CheckedRegistration, RegistrationError> {
    let agent_id = check_agent_id(path_id.or(req.agent_id.as_deref()))?;

    let aik_tpm = required_binary("aik_tpm", req.aik_tpm.as_deref(), "")?;
    let ak = parse_public("aik_tpm", &aik_tpm)?;
    check_ak_attributes(ak.object_attributes)?;

    // Without an EK no credential can be made (§11 Q24), whatever tpm_identity says.
    let why = match policy.tpm_identity {
        TpmIdentity::EkCert => " by configuration (tpm_identity = ek_cert)",
        _ => " to bind the AK to the TPM (MakeCredential)",
    };
    let ek_tpm = required_binary("ek_tpm", req.ek_tpm.as_deref(), why)?;
    let ek = parse_public("ek_tpm", &ek_tpm)?;

    let ekcert = optional_cert("ekcert", req.ekcert.as_deref())?;
    if let Some(der) = &ekcert {
        check_key_matches("ek_tpm", &ek, "ekcert", der)?;
    }
    if policy.require_ek_cert {
        let der = ekcert.as_deref().ok_or(RegistrationError::Missing {
            field: "ekcert",
            why: " by configuration (require_ek_cert = true)",
        })?;
        check_trusted("ekcert", der, policy)?;
    }

    let iak = optional_key_and_cert(
        req.iak_tpm.as_deref(),
        "iak_tpm",
        req.iak_cert.as_deref(),
        "iak_cert",
    )?;
    let idevid = optional_key_and_cert(
        req.idevid_tpm.as_deref(),
        "idevid_tpm",
        req.idevid_cert.as_deref(),
        "idevid_cert",
    )?;
    if iak.is_some() != idevid.is_some() {
        let field = if iak.is_some() {
            "idevid_tpm"
        } else {
            "iak_tpm"
        };
        return Err(RegistrationError::Missing {
            field,
            why: " when an IAK or IDevID is provided",
        });
    }
    if policy.tpm_identity == TpmIdentity::IakIdevid && iak.is_none() {
        return Err(RegistrationError::Missing {
            field: "iak_tpm",
            why: " by configuration (tpm_identity = iak_idevid)",
        });
    }
    for (field, pair) in [("iak_cert", &iak), ("idevid_cert", &idevid)] {
        if let Some(pair) = pair {
            check_trusted(field, &pair.cert_der, policy)?;
        }
    }

    let mtls_cert = check_mtls_cert(req.mtls_cert.as_deref())?;
    check_contact(req.ip.as_deref(), req.port)?;

    Ok(CheckedRegistration {
        agent_id,
        ek,
        ek_tpm,
        ak,
        aik_tpm,
        ekcert,
        iak,
        idevid,
        mtls_cert,
    })
}

fn check_agent_id(id: Option<&str>) -> Result<String, RegistrationError> {
    let id = id
        .filter(|s| !s.is_empty())
        .ok_or(RegistrationError::MissingAgentId)?;
    if !keylime_api::is_valid_agent_id(id) {
        return Err(RegistrationError::BadAgentId);
    }
    Ok(id.to_owned())
}

/// The contact address and port, checked as the store will (no database error later).
fn check_contact(ip: Option<&str>, port: Option<u16>) -> Result<(), RegistrationError> {
    if let Some(ip) = ip {
        let usable = !ip.is_empty()
            && ip.len() <= MAX_IP_CHARS
            && !ip.chars().any(|c| c.is_whitespace() || c.is_control());
        if !usable {
            return Err(RegistrationError::BadIp);
        }
    }
    if port == Some(0) {
        return Err(RegistrationError::PortZero);
    }
    Ok(())
}

fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

fn required_binary(
    field: &'static str,
    value: Option<&str>,
    why: &'static str,
) -> Result<Vec<u8>, RegistrationError> {
    let text = present(value).ok_or(RegistrationError::Missing { field, why })?;
    decode_binary(text).map_err(|e| RegistrationError::Encoding {
        field,
        reason: e.to_string(),
    })
}

fn parse_public(field: &'static str, bytes: &[u8]) -> Result<Public, RegistrationError> {
    let public = Public::from_tpm2b(bytes).map_err(|e| RegistrationError::TpmPublic {
        field,
        reason: e.to_string(),
    })?;
    // Only RSA and ECC keys are usable (a SubjectPublicKeyInfo must exist).
    public
        .spki_der()
        .map_err(|e| RegistrationError::TpmPublic {
            field,
            reason: e.to_string(),
        })?;
    Ok(public)
}

/// An AK must be a restricted signing key that cannot decrypt.
fn check_ak_attributes(attributes: u32) -> Result<(), RegistrationError> {
    let restricted_signing = attributes & TPMA_RESTRICTED != 0
        && attributes & TPMA_SIGN_ENCRYPT != 0
        && attributes & TPMA_DECRYPT == 0;
    if restricted_signing {
        Ok(())
    } else {
        Err(RegistrationError::AkNotRestrictedSigning { attributes })
    }
}

/// A certificate field: PEM (first certificate of a bundle), b64/hex DER, or absent.
fn optional_cert(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<Vec<u8>>, RegistrationError> {
    let Some(text) = present(value) else {
        return Ok(None);
    };
    let bad = |reason: String| RegistrationError::Certificate { field, reason };
    let der = if text.contains("-----BEGIN") {
        keylime_pki::pem_or_der_to_der_list(text.as_bytes())
            .map_err(|e| bad(e.to_string()))?
            .into_iter()
            .next()
            .ok_or_else(|| bad("no certificate in PEM".into()))?
    } else {
        decode_binary(text).map_err(|e| bad(e.to_string()))?
    };
    // Parse once so malformed DER is refused here, not when rendered.
    x509_parser::parse_x509_certificate(&der).map_err(|e| bad(e.to_string()))?;
    Ok(Some(der))
}

fn check_key_matches(
    key_field: &'static str,
    key: &Public,
    cert_field: &'static str,
    cert_der: &[u8],
) -> Result<(), RegistrationError> {
    let cert_spki = keylime_pki::ek_cert_public_key_spki(cert_der).map_err(|e| {
        RegistrationError::Certificate {
            field: cert_field,
            reason: e.to_string(),
        }
    })?;
    let key_spki = key.spki_der().map_err(|e| RegistrationError::TpmPublic {
        field: key_field,
        reason: e.to_string(),
    })?;
    if cert_spki == key_spki {
        Ok(())
    } else {
        Err(RegistrationError::KeyMismatch {
            key_field,
            cert_field,
        })
    }
}

fn check_trusted(
    field: &'static str,
    der: &[u8],
    policy: &RegistrationPolicy,
) -> Result<(), RegistrationError> {
    let store = policy
        .cert_store
        .as_ref()
        .ok_or(RegistrationError::NoCertStore { field })?
        .current()
        .map_err(|reason| RegistrationError::Untrusted { field, reason })?;
    store
        .verify(der)
        .map_err(|e| RegistrationError::Untrusted {
            field,
            reason: e.to_string(),
        })?;
    Ok(())
}

fn optional_key_and_cert(
    key: Option<&str>,
    key_field: &'static str,
    cert: Option<&str>,
    cert_field: &'static str,
) -> Result<Option<KeyAndCert>, RegistrationError> {
    let cert_der = optional_cert(cert_field, cert)?;
    match (present(key), cert_der) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(RegistrationError::Missing {
            field: cert_field,
            why: " when IDevID/IAK key is provided",
        }),
        (None, Some(_)) => Err(RegistrationError::Missing {
            field: key_field,
            why: " when IDevID/IAK certificate is provided",
        }),
        (Some(text), Some(der)) => {
            let tpm2b = decode_binary(text).map_err(|e| RegistrationError::Encoding {
                field: key_field,
                reason: e.to_string(),
            })?;
            let public = parse_public(key_field, &tpm2b)?;
            check_key_matches(key_field, &public, cert_field, &der)?;
            Ok(Some(KeyAndCert {
                tpm2b,
                cert_der: der,
            }))
        }
    }
}

/// `mtls_cert`: `"disabled"` is kept; a certificate is stored as PEM.
fn check_mtls_cert(value: Option<&str>) -> Result<Option<String>, RegistrationError> {
    match present(value) {
        None => Ok(None),
        Some("disabled") => Ok(Some("disabled".to_owned())),
        Some(text) if text.contains("-----BEGIN") => {
            optional_cert("mtls_cert", Some(text))?;
            Ok(Some(text.to_owned()))
        }
        Some(text) => {
            let der = optional_cert("mtls_cert", Some(text))?.unwrap_or_default();
            Ok(Some(der_to_pem(&der)))
        }
    }
}

/// PEM text of one DER certificate.
pub fn der_to_pem(der: &[u8]) -> String {
    let b64 = keylime_api::encode_b64(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ak_attribute_check() {
        assert!(check_ak_attributes(TPMA_RESTRICTED | TPMA_SIGN_ENCRYPT).is_ok());
        for bad in [
            TPMA_RESTRICTED | TPMA_DECRYPT,
            TPMA_SIGN_ENCRYPT,
            TPMA_RESTRICTED | TPMA_SIGN_ENCRYPT | TPMA_DECRYPT,
        ] {
            assert!(matches!(
                check_ak_attributes(bad),
                Err(RegistrationError::AkNotRestrictedSigning { .. })
            ));
        }
    }

    #[test]
    fn agent_id_rules() {
        assert!(matches!(
            check_agent_id(None),
            Err(RegistrationError::MissingAgentId)
        ));
        assert!(matches!(
            check_agent_id(Some("")),
            Err(RegistrationError::MissingAgentId)
        ));
        assert!(matches!(
            check_agent_id(Some("a\nb")),
            Err(RegistrationError::BadAgentId)
        ));
        assert!(matches!(
            check_agent_id(Some(&"x".repeat(81))),
            Err(RegistrationError::BadAgentId)
        ));
        for spaced in ["a b", " abc", "abc\t"] {
            assert!(matches!(
                check_agent_id(Some(spaced)),
                Err(RegistrationError::BadAgentId)
            ));
        }
        assert_eq!(check_agent_id(Some("abc")).unwrap(), "abc");
        assert_eq!(check_agent_id(Some("ägent2")).unwrap(), "ägent2");
    }

    #[test]
    fn contact_rules() {
        check_contact(Some("10.0.0.1"), Some(9002)).unwrap();
        check_contact(None, None).unwrap();
        for ip in ["", "a b", "1.2.3.4\n", &"1".repeat(256)] {
            assert!(matches!(
                check_contact(Some(ip), None),
                Err(RegistrationError::BadIp)
            ));
        }
        assert!(matches!(
            check_contact(None, Some(0)),
            Err(RegistrationError::PortZero)
        ));
    }

    #[test]
    fn tpm_identity_values() {
        assert_eq!(
            TpmIdentity::parse("default"),
            Some(TpmIdentity::EkCertOrIakIdevid)
        );
        assert_eq!(TpmIdentity::parse("ek_cert"), Some(TpmIdentity::EkCert));
        assert_eq!(
            TpmIdentity::parse("iak_idevid"),
            Some(TpmIdentity::IakIdevid)
        );
        assert_eq!(TpmIdentity::parse("bogus"), None);
    }

    #[test]
    fn pem_wrapping_round_trips() {
        let pem = der_to_pem(&[1, 2, 3]);
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\nAQID\n"));
    }
}
