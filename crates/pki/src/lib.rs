#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ca;
mod certinfo;
pub mod ek;
mod error;
mod files;
mod sigverify;
pub mod tls;
pub mod tls_dir;

pub use ca::{
    CaOptions, CertRole, CertificateAuthority, IssuedCert, KeyAlgorithm, self_signed_agent_cert,
};
pub use certinfo::{MAX_BUNDLE_LEN, MAX_CERT_LEN, ek_cert_public_key_spki, pem_or_der_to_der_list};
pub use ek::{CertOrigin, ChainLink, EkCertStore, EkCertVerdict, EkVerifyOptions, ValidityPolicy};
pub use error::PkiError;
pub use sigverify::{HashName, SignatureScheme};
pub use tls::{
    ChainOnlyServerVerifier, ClientAuth, client_config, client_config_with_extra_roots,
    crypto_provider, install_default_provider, load_certs, load_key, peer_common_name,
    server_config,
};
pub use tls_dir::{TlsDir, ensure_generated, load_or_create_agent_cert};

/// Re-exported so callers name the same types.
pub use rustls_pki_types::{CertificateDer, PrivateKeyDer};
