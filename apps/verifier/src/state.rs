//! What every request handler shares ([`AppState`]): the store, the pull-loop supervisor,
//! the verifier's identity and address, and the limits and settings the handlers apply.
//! Built once by [`crate::start`]; the handlers (`agents`, `policies`, `verify`, `status`)
//! and the dispatcher in `service` read it, so none of them needs another.

use std::net::SocketAddr;
use std::sync::Arc;

use keylime_store::Store;

use crate::evidence_gate::EvidenceGate;
use crate::policy_cache::PolicySettings;
use crate::pull::Supervisor;
use crate::push::SessionRegistry;

/// What every request handler shares.
pub struct AppState {
    pub store: Store,
    pub supervisor: Arc<Supervisor>,
    pub verifier_id: String,
    pub listen_addr: SocketAddr,
    pub quote_interval_secs: f64,
    pub max_body_bytes: usize,
    pub policy_settings: PolicySettings,
    /// Admission and limits of `/verify/evidence`.
    pub evidence: EvidenceGate,
    /// Push agents' proof-of-possession sessions.
    pub sessions: SessionRegistry,
}
