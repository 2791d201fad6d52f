//! HTTP(S) serving plumbing shared by the registrar, the verifier and the agent: accept
//! loops for plain HTTP and TLS (with the verified client certificate handed to every
//! request), connection limits (caps in all and per client address, handshake, first-byte,
//! header and idle deadlines, backoff when out of descriptors), graceful shutdown, and the
//! per-request middleware (request id, span, deadline) and size- and time-limited body
//! reader.
//!
//! It knows nothing about Keylime's routes or payloads; services build an axum `Router`
//! and hand it to [`listener::serve`].

#![forbid(unsafe_code)]

mod connections;
pub mod limits;
pub mod listener;
pub mod request;
