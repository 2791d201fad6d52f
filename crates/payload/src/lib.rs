//! Secure-payload cryptography shared by the tenant, the verifier and the agent
//! (PROTOCOL.md §4.6 and §7).
//!
//! This crate owns the bootstrap-key split (K = U ⊕ V), the key check tag
//! (HMAC-SHA384), the payload encryption (AES-256-GCM with a 16-byte IV, upstream's
//! layout), the RSA-OAEP-SHA1 key transport to the agent's payload key, and the
//! RSA-PSS signatures of revocation messages. Everything here is a pure function: no
//! files, no network, no logging of key material. Malformed input of any kind yields a
//! [`PayloadError`], never a panic.
#![forbid(unsafe_code)]

mod bootstrap;
mod error;
mod keys;
mod oaep;
mod sealed;

pub mod revocation;

pub use bootstrap::{BootstrapKey, KEY_LEN, combine, key_auth_tag, split_key, verify_auth_tag};
pub use error::PayloadError;
pub use keys::{parse_rsa_private_key_pem, parse_rsa_public_key_pem};
pub use oaep::{
    decrypt_key_share, rsa_oaep_sha1_decrypt, rsa_oaep_sha1_decrypt_with, rsa_oaep_sha1_encrypt,
    rsa_oaep_sha1_encrypt_key,
};
pub use sealed::{MAX_PAYLOAD_B64_LEN, decrypt_payload, encrypt_payload};
