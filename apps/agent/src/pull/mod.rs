//! The pull-mode REST API of the agent (PROTOCOL.md §4): quotes, key delivery, agent
//! info, revocation notices and `/version`, served for every enabled API version at once
//! over HTTPS with required client certificates (`enable_agent_mtls`) or plain HTTP.
//! The client certificate is enforced by the rustls configuration (handshake refused
//! without one chaining to `trusted_client_ca`), so handlers need not look at it. Over
//! plain HTTP anyone can reach the API, so the key shares (a decryption with NK for
//! whoever asks, and the way to a payload that runs as the agent) are refused unless
//! `enable_insecure_payload` says otherwise.
//!
//! Handlers are thin: they validate input and call one function of `quoting`,
//! `key_exchange`, `secure_payload` or `revocation`. TPM work runs on the blocking pool
//! through `SharedTpm`, one command sequence at a time. [`api`] holds what the handlers
//! share; [`routing`] builds the router over it.

mod api;
mod info;
mod keys;
mod listener;
mod notifications;
mod quotes;
mod respond;
mod routing;

pub use api::{MAX_BODY_BYTES, PullApi};
pub use listener::{PullServerError, serve};
pub use routing::router;
