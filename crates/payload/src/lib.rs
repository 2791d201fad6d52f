#![doc = include_str!("../README.md")]
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
