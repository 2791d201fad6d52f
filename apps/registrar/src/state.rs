//! What every request handler shares ([`AppState`]): the store, the registration checks
//! and the body limit. Built once by [`crate::start`]; the dispatcher in `service` and the
//! operations in `agents` read it.

use keylime_store::Store;

use crate::registration_checks::RegistrationPolicy;

/// What every request handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Registration checks.
    pub policy: RegistrationPolicy,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
}
