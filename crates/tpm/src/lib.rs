//! keylime-tpm: a pure-Rust TPM 2.0 client and the off-TPM structures and crypto Keylime
//! needs.
//!
//! Off-TPM (no TPM required; used by the registrar and verifier): [`Public`] (keys, names,
//! SPKI), [`make_credential`], [`Attest`], [`Signature`] and [`verify_signature`],
//! [`PcrSelection`], [`pcr_blob`] and [`quote`] (the Keylime quote string), [`kdfa`]/[`kdfe`].
//!
//! On-TPM: [`Tpm`] (blocking client over [`Tcti`]: `/dev/tpmrm0`, `/dev/tpm0` or swtpm).
//!
//! This crate must not depend on any C TPM library; all TPM structures it needs are
//! marshalled here.
#![forbid(unsafe_code)]

pub mod alg;
pub mod attest;
mod client;
pub mod command;
pub mod credential;
pub mod error;
pub mod kdf;
pub mod marshal;
pub mod pcr;
pub mod pcr_blob;
pub mod public;
pub mod quote;
pub mod rc;
pub mod signature;
mod spki;
pub mod templates;
pub mod transport;

pub use alg::{EccCurve, EkAlg, HashAlg, SignAlg};
pub use attest::{Attest, AttestBody, ClockInfo};
pub use client::{AkBlob, CertifyOutput, KeyHandle, QuoteOutput, Tpm};
pub use credential::{CredentialBlob, make_credential, make_credential_with_rng};
pub use error::{Result, TpmError};
pub use kdf::{kdfa, kdfe};
pub use pcr::{PcrSelection, pcr_digest};
pub use public::{Public, PublicKey, SigScheme, SymDef};
pub use quote::QuoteParts;
pub use rc::ResponseCode;
pub use signature::{Signature, VerifyingKey, verify_signature};
pub use transport::Tcti;
