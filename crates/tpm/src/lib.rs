#![doc = include_str!("../README.md")]
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
