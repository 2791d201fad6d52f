//! HTTP(S) serving plumbing shared by the registrar, the verifier and the agent: accept
//! loops for plain HTTP and TLS (with the verified client certificate handed to every
//! request), handshake and header timeouts, graceful shutdown, and the per-request
//! middleware (request id, span, deadline) and size-limited body reader.
//!
//! It knows nothing about Keylime's routes or payloads; services build an axum `Router`
//! and hand it to [`listener::serve`].

#![forbid(unsafe_code)]

pub mod listener;
pub mod request;
