//! keylime-pki: the certificates of a Keylime deployment.
//!
//! * [`ca`] — a CA from upstream `[ca]` options and the server, client and
//!   agent certificates it (or the agent itself) issues;
//! * [`tls_dir`] — `tls_dir = generate`: idempotent, crash-safe creation of a
//!   service's TLS directory with upstream file names;
//! * [`tls`] — rustls server/client configurations (ring only) for mTLS, with
//!   upstream's "chain, not host name" server identity;
//! * [`ek`] — EK certificate validation against a TPM vendor CA store,
//!   tolerant of the malformed certificates real TPMs carry.
//!
//! This crate does no network I/O and holds no global state.
//!
//! ```no_run
//! use std::path::Path;
//! use keylime_pki::{ensure_generated, load_certs, load_key, server_config, CaOptions, ClientAuth};
//!
//! # fn main() -> Result<(), keylime_pki::PkiError> {
//! // tls_dir = generate for a verifier listening on 127.0.0.1.
//! let tls = ensure_generated(Path::new("/var/lib/keylime/cv_ca"), &CaOptions::default(),
//!                            &["127.0.0.1".to_string()], true)?;
//! let config = server_config(load_certs(&tls.server_cert)?, load_key(&tls.server_key)?,
//!                            ClientAuth::Optional(load_certs(&tls.ca_cert)?))?;
//!
//! // EK certificate check against the tenant's tpm_cert_store.
//! let store = keylime_pki::EkCertStore::load(Path::new("/var/lib/keylime/tpm_cert_store"))?;
//! # let ek_cert_der: Vec<u8> = Vec::new();
//! let verdict = store.verify(&ek_cert_der)?;
//! println!("EK certificate trusted via {}", verdict.anchor);
//! # let _ = config;
//! # Ok(())
//! # }
//! ```

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
