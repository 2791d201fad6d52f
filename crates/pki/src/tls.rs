//! rustls configurations for Keylime's mTLS, always with the ring provider.
//!
//! Upstream's clients do not check host names (`check_hostname=False`): a
//! server's identity is its certificate chain. [`ChainOnlyServerVerifier`]
//! therefore verifies the chain against the trusted roots with webpki (dates,
//! signatures, EKU serverAuth) and ignores the name. A pull agent's
//! self-signed `mtls_cert` is trusted directly ([`client_config_with_extra_roots`]):
//! like OpenSSL with the certificate loaded as a CA, a server presenting exactly
//! that certificate is accepted on its validity dates alone, without checking
//! its self-signature (upstream's Rust agent signs its certificate before adding
//! the SAN extension, so the self-signature cannot be relied on); the TLS
//! handshake still proves possession of its key. Servers verify client certificates
//! against trusted client CAs; the admin identity is `admin:<CN>` of the
//! client certificate ([`peer_common_name`]).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, RootCertStore};
use rustls_pki_types::pem::{self, PemObject as _};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::PkiError;

/// The crypto provider used everywhere in this project: ring.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process-wide rustls provider, for libraries (reqwest) that look it up
/// instead of taking a configuration. Idempotent; a provider already installed is kept.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Reads all certificates from a PEM file (or a single DER certificate).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let data = crate::files::read(path)?;
    if data.first() == Some(&0x30) {
        return Ok(vec![CertificateDer::from(data)]);
    }
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Pem {
            what: path.display().to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(PkiError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1 PEM) from a file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    let data = crate::files::read(path)?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| match e {
        pem::Error::NoItemsFound => PkiError::NoPrivateKey {
            path: path.to_owned(),
        },
        other => PkiError::Pem {
            what: path.display().to_string(),
            reason: other.to_string(),
        },
    })
}

/// Client-certificate policy of a server.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// No client certificate requested.
    None,
    /// A client certificate is requested; if presented it must chain to one of these CAs
    /// (the verifier's `CERT_OPTIONAL`).
    Optional(Vec<CertificateDer<'static>>),
    /// A client certificate chaining to one of these CAs is required (the pull agent).
    Required(Vec<CertificateDer<'static>>),
}

/// Builds a TLS server configuration (TLS 1.2 and 1.3, ring).
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_auth: ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, PkiError> {
    let provider = crypto_provider();
    let verifier = match client_auth {
        ClientAuth::None => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::Optional(cas) => WebPkiClientVerifier::builder_with_provider(
            Arc::new(root_store(cas)?),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| PkiError::ClientVerifier(e.to_string()))?,
        ClientAuth::Required(cas) => WebPkiClientVerifier::builder_with_provider(
            Arc::new(root_store(cas)?),
            provider.clone(),
        )
        .build()
        .map_err(|e| PkiError::ClientVerifier(e.to_string()))?,
    };
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(cert_chain, key)?;
    Ok(Arc::new(config))
}

/// Builds a TLS client configuration that trusts `trusted_server_cas` (chain
/// only, host name ignored) and optionally presents `client_identity`.
pub fn client_config(
    trusted_server_cas: Vec<CertificateDer<'static>>,
    client_identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<rustls::ClientConfig>, PkiError> {
    client_config_with_extra_roots(trusted_server_cas, Vec::new(), client_identity)
}

/// Like [`client_config`], also trusting `extra_trusted_certs` directly as roots
/// (a pull agent's self-signed `mtls_cert`).
pub fn client_config_with_extra_roots(
    trusted_server_cas: Vec<CertificateDer<'static>>,
    extra_trusted_certs: Vec<CertificateDer<'static>>,
    client_identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<rustls::ClientConfig>, PkiError> {
    let provider = crypto_provider();
    let verifier = Arc::new(
        ChainOnlyServerVerifier::new(trusted_server_cas, &provider)?
            .with_pinned(extra_trusted_certs),
    );
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match client_identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn root_store(certs: Vec<CertificateDer<'static>>) -> Result<RootCertStore, PkiError> {
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// Verifies a server's certificate chain against trusted roots, ignoring the
/// server name (upstream clients run with `check_hostname=False`).
#[derive(Debug)]
pub struct ChainOnlyServerVerifier {
    roots: Arc<RootCertStore>,
    /// Certificates trusted as they are (DER), e.g. agents' self-signed certs.
    pinned: Vec<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ChainOnlyServerVerifier {
    /// A verifier trusting `roots` (CA certificates or self-signed server certificates).
    pub fn new(
        roots: Vec<CertificateDer<'static>>,
        provider: &CryptoProvider,
    ) -> Result<Self, PkiError> {
        Ok(ChainOnlyServerVerifier {
            roots: Arc::new(root_store(roots)?),
            pinned: Vec::new(),
            algorithms: provider.signature_verification_algorithms,
        })
    }

    /// Also trusts these exact certificates (checked on validity dates only).
    /// They are added as roots too, so certificates they issue chain to them.
    pub fn with_pinned(mut self, certs: Vec<CertificateDer<'static>>) -> Self {
        if !certs.is_empty() {
            let mut roots = (*self.roots).clone();
            let (added, ignored) = roots.add_parsable_certificates(certs.iter().cloned());
            tracing::trace!(added, ignored, "pinned server certificates added as roots");
            self.roots = Arc::new(roots);
        }
        self.pinned.extend(certs);
        self
    }

    fn pinned_match(
        &self,
        end_entity: &CertificateDer<'_>,
        now: UnixTime,
    ) -> Option<Result<(), rustls::Error>> {
        let pinned = self
            .pinned
            .iter()
            .find(|p| p.as_ref() == end_entity.as_ref())?;
        let Ok((_, cert)) = X509Certificate::from_der(pinned.as_ref()) else {
            return Some(Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadEncoding,
            )));
        };
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let validity = cert.validity();
        Some(if now < validity.not_before.timestamp() {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidYet,
            ))
        } else if now > validity.not_after.timestamp() {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired,
            ))
        } else {
            Ok(())
        })
    }
}

impl ServerCertVerifier for ChainOnlyServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(result) = self.pinned_match(end_entity, now) {
            return result.map(|()| ServerCertVerified::assertion());
        }
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The first common name of a certificate's subject (the admin identity is
/// `admin:<CN>`). `None` if the certificate does not parse or has no CN.
pub fn peer_common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = X509Certificate::from_der(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}
