//! A certificate authority for a Keylime deployment (upstream `ca.conf` options)
//! and the certificates it issues: server and client certificates with
//! subject alternative names, plus the agent's self-signed mTLS certificate.
//!
//! Keys are generated with ring (ECDSA) or RustCrypto `rsa` (RSA, which ring
//! cannot generate) and signed through rcgen. This module holds keys only in
//! memory; writing them to disk is `tls_dir`'s job.

use std::net::IpAddr;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rsa::pkcs8::EncodePrivateKey;
use rustls_pki_types::PrivatePkcs8KeyDer;
use time::OffsetDateTime;

use crate::PkiError;

/// Key type of generated certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA with `cert_bits` bits, signatures RSA PKCS#1 v1.5 SHA-256 (upstream's choice).
    Rsa,
    /// ECDSA on NIST P-256 with SHA-256.
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384.
    EcdsaP384,
}

/// Upstream `[ca]` options (keylime `ca.conf`), with upstream defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaOptions {
    /// `cert_country` (default `US`).
    pub cert_country: String,
    /// `cert_ca_name`, the CA's common name (default `Keylime Certificate Authority`).
    pub cert_ca_name: String,
    /// `cert_state` (default `MA`).
    pub cert_state: String,
    /// `cert_locality` (default `Lexington`).
    pub cert_locality: String,
    /// `cert_organization` (default `Keylime`).
    pub cert_organization: String,
    /// `cert_org_unit` (default `53`).
    pub cert_org_unit: String,
    /// `cert_ca_lifetime` in days (default 3650).
    pub cert_ca_lifetime: u32,
    /// `cert_lifetime` in days for issued certificates (default 365).
    pub cert_lifetime: u32,
    /// `cert_bits`, RSA modulus size (default 2048); ignored for ECDSA.
    pub cert_bits: u32,
    /// `cert_crl_dist`, CRL distribution point URL written into issued certificates
    /// (default `http://localhost:38080/crl`); `None` or empty leaves the extension out.
    pub cert_crl_dist: Option<String>,
    /// Key type (not an upstream option; upstream always uses RSA).
    pub key_algorithm: KeyAlgorithm,
}

impl Default for CaOptions {
    fn default() -> Self {
        CaOptions {
            cert_country: "US".into(),
            cert_ca_name: "Keylime Certificate Authority".into(),
            cert_state: "MA".into(),
            cert_locality: "Lexington".into(),
            cert_organization: "Keylime".into(),
            cert_org_unit: "53".into(),
            cert_ca_lifetime: 3650,
            cert_lifetime: 365,
            cert_bits: 2048,
            cert_crl_dist: Some("http://localhost:38080/crl".into()),
            key_algorithm: KeyAlgorithm::Rsa,
        }
    }
}

/// Which kind of certificate the CA issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertRole {
    /// TLS server (EKU serverAuth and clientAuth: services also dial out with it).
    Server,
    /// TLS client (EKU clientAuth).
    Client,
}

impl CertRole {
    fn name(self) -> &'static str {
        match self {
            CertRole::Server => "server",
            CertRole::Client => "client",
        }
    }
}

/// A certificate and its private key, both PEM (key in PKCS#8).
#[derive(Clone)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// A loaded or freshly created CA that can issue certificates.
pub struct CertificateAuthority {
    cert_pem: String,
    key: KeyPair,
    /// rcgen's view of the CA, used as the issuer when signing.
    issuer: rcgen::Certificate,
    opts: CaOptions,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Creates a new self-signed CA from `opts`.
    pub fn generate(opts: &CaOptions) -> Result<Self, PkiError> {
        validate(opts)?;
        let key = generate_key(opts.key_algorithm, opts.cert_bits, "CA")?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(opts, &opts.cert_ca_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial());
        (params.not_before, params.not_after) = validity(opts.cert_ca_lifetime);
        let issuer = params
            .self_signed(&key)
            .map_err(|source| PkiError::CertGeneration {
                what: "CA".into(),
                source,
            })?;
        Ok(CertificateAuthority {
            cert_pem: issuer.pem(),
            key,
            issuer,
            opts: opts.clone(),
        })
    }

    /// Loads an existing CA from its certificate and PKCS#8 private key (both PEM).
    ///
    /// `opts` only supplies the subject fields and lifetime of certificates issued later.
    pub fn load(cert_pem: &str, key_pem: &str, opts: &CaOptions) -> Result<Self, PkiError> {
        validate(opts)?;
        let key = key_pair_from_pem(key_pem).map_err(|reason| PkiError::KeyLoad {
            path: "CA private key".into(),
            reason,
        })?;
        let params =
            CertificateParams::from_ca_cert_pem(cert_pem).map_err(|e| PkiError::CertParse {
                what: "CA certificate".into(),
                reason: e.to_string(),
            })?;
        // The CA certificate must belong to this key, or everything it issues is unverifiable.
        let cert_spki = crate::certinfo::spki_of_pem(cert_pem)?;
        if cert_spki != key.public_key_der() {
            return Err(PkiError::KeyLoad {
                path: "CA private key".into(),
                reason: "the key does not match the CA certificate's public key".into(),
            });
        }
        // rcgen needs a Certificate as issuer; re-signing the parsed parameters gives one
        // with the same subject and key identifier (the bytes are not used).
        let issuer = params
            .self_signed(&key)
            .map_err(|source| PkiError::CertGeneration {
                what: "CA (reloaded)".into(),
                source,
            })?;
        Ok(CertificateAuthority {
            cert_pem: cert_pem.to_owned(),
            key,
            issuer,
            opts: opts.clone(),
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Issues a certificate for `role` with common name `common_name` and the given
    /// subject alternative names (IP addresses or DNS names), with a fresh key.
    pub fn issue(
        &self,
        role: CertRole,
        common_name: &str,
        sans: &[String],
    ) -> Result<IssuedCert, PkiError> {
        let key = generate_key(self.opts.key_algorithm, self.opts.cert_bits, role.name())?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(&self.opts, common_name);
        params.subject_alt_names = parse_sans(sans)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = match role {
            CertRole::Server => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            CertRole::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        if let Some(url) = self.opts.cert_crl_dist.as_deref().filter(|u| !u.is_empty()) {
            params.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![url.to_owned()],
            }];
        }
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        (params.not_before, params.not_after) = validity(self.opts.cert_lifetime);
        let cert = params
            .signed_by(&key, &self.issuer, &self.key)
            .map_err(|source| PkiError::CertGeneration {
                what: role.name().into(),
                source,
            })?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Creates the agent's self-signed mTLS certificate (what it sends as `mtls_cert`):
/// ECDSA P-256, CN = `agent_uuid`, SANs = `ips` (IP addresses or DNS names),
/// EKU serverAuth and clientAuth, valid ten years. Returns `(cert_pem, key_pem)`.
pub fn self_signed_agent_cert(
    agent_uuid: &str,
    ips: &[String],
) -> Result<(String, String), PkiError> {
    let key = generate_key(KeyAlgorithm::EcdsaP256, 0, "agent")?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, agent_uuid);
    params.distinguished_name = dn;
    params.subject_alt_names = parse_sans(ips)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyAgreement,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.serial_number = Some(random_serial());
    (params.not_before, params.not_after) = validity(3650);
    let cert = params
        .self_signed(&key)
        .map_err(|source| PkiError::CertGeneration {
            what: "agent".into(),
            source,
        })?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn validate(opts: &CaOptions) -> Result<(), PkiError> {
    if opts.key_algorithm == KeyAlgorithm::Rsa && !(2048..=8192).contains(&opts.cert_bits) {
        return Err(PkiError::InvalidCaOption {
            option: "cert_bits",
            reason: format!("{} is outside 2048..=8192", opts.cert_bits),
        });
    }
    if opts.cert_ca_lifetime == 0 {
        return Err(PkiError::InvalidCaOption {
            option: "cert_ca_lifetime",
            reason: "must be at least 1 day".into(),
        });
    }
    if opts.cert_lifetime == 0 {
        return Err(PkiError::InvalidCaOption {
            option: "cert_lifetime",
            reason: "must be at least 1 day".into(),
        });
    }
    if opts.cert_ca_name.trim().is_empty() {
        return Err(PkiError::InvalidCaOption {
            option: "cert_ca_name",
            reason: "must not be empty".into(),
        });
    }
    Ok(())
}

fn distinguished_name(opts: &CaOptions, common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    let fields = [
        (DnType::CountryName, &opts.cert_country),
        (DnType::StateOrProvinceName, &opts.cert_state),
        (DnType::LocalityName, &opts.cert_locality),
        (DnType::OrganizationName, &opts.cert_organization),
        (DnType::OrganizationalUnitName, &opts.cert_org_unit),
    ];
    for (ty, value) in fields {
        if !value.is_empty() {
            dn.push(ty, value.as_str());
        }
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Parses SAN strings: an IP address literal becomes an iPAddress entry, anything
/// else a dNSName (which must be ASCII).
pub(crate) fn parse_sans(sans: &[String]) -> Result<Vec<SanType>, PkiError> {
    let mut out = Vec::with_capacity(sans.len());
    for san in sans {
        let san = san.trim();
        if san.is_empty() {
            continue;
        }
        let entry = match san.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(san.try_into().map_err(|_| PkiError::InvalidCaOption {
                option: "cert_subject_alternative_names",
                reason: format!("'{san}' is neither an IP address nor an ASCII DNS name"),
            })?),
        };
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    Ok(out)
}

/// Not-before one hour in the past (clock skew between hosts), not-after `days` later.
fn validity(days: u32) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    let not_before = now - Duration::from_secs(3600);
    let not_after = now + Duration::from_secs(u64::from(days) * 86_400);
    (not_before, not_after)
}

/// A random positive 16-byte serial number.
fn random_serial() -> SerialNumber {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01; // keep it 16 bytes long and non-zero
    SerialNumber::from_slice(&bytes)
}

pub(crate) fn generate_key(alg: KeyAlgorithm, bits: u32, what: &str) -> Result<KeyPair, PkiError> {
    let err = |reason: String| PkiError::KeyGeneration {
        what: what.to_owned(),
        reason,
    };
    match alg {
        KeyAlgorithm::EcdsaP256 => {
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| err(e.to_string()))
        }
        KeyAlgorithm::EcdsaP384 => {
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).map_err(|e| err(e.to_string()))
        }
        KeyAlgorithm::Rsa => {
            let bits = usize::try_from(bits).map_err(|e| err(e.to_string()))?;
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits)
                .map_err(|e| err(e.to_string()))?;
            let der = key.to_pkcs8_der().map_err(|e| err(e.to_string()))?;
            KeyPair::from_pkcs8_der_and_sign_algo(
                &PrivatePkcs8KeyDer::from(der.as_bytes()),
                &rcgen::PKCS_RSA_SHA256,
            )
            .map_err(|e| err(e.to_string()))
        }
    }
}

/// Loads a signing key from PEM: PKCS#8, or PKCS#1 RSA / SEC1 EC keys (converted
/// to PKCS#8 because ring signs only from PKCS#8).
pub(crate) fn key_pair_from_pem(key_pem: &str) -> Result<KeyPair, String> {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::{self, PemObject as _};
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| match e {
        pem::Error::NoItemsFound => "no private key in PEM".to_owned(),
        other => other.to_string(),
    })?;
    let pkcs8: Vec<u8> = match key {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        PrivateKeyDer::Pkcs1(k) => {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            let rsa = rsa::RsaPrivateKey::from_pkcs1_der(k.secret_pkcs1_der())
                .map_err(|e| format!("PKCS#1 RSA key: {e}"))?;
            rsa.to_pkcs8_der()
                .map_err(|e| e.to_string())?
                .as_bytes()
                .to_vec()
        }
        PrivateKeyDer::Sec1(k) => {
            let der = k.secret_sec1_der();
            if let Ok(sk) = p256::SecretKey::from_sec1_der(der) {
                sk.to_pkcs8_der()
                    .map_err(|e| e.to_string())?
                    .as_bytes()
                    .to_vec()
            } else if let Ok(sk) = p384::SecretKey::from_sec1_der(der) {
                sk.to_pkcs8_der()
                    .map_err(|e| e.to_string())?
                    .as_bytes()
                    .to_vec()
            } else {
                return Err("SEC1 EC key on an unsupported curve (P-256 and P-384 only)".into());
            }
        }
        _ => return Err("unsupported private key encoding".into()),
    };
    if let Ok(kp) = KeyPair::try_from(pkcs8.as_slice()) {
        return Ok(kp);
    }
    // rcgen's inference can miss RSA keys; say explicitly which algorithm to use.
    KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .map_err(|e| e.to_string())
}
