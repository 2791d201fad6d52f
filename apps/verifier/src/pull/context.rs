//! What every agent task shares ([`PullContext`]: store, timing, TLS client identity,
//! severity policy, the poll semaphore, the notifier and the policy cache) and what the
//! API asks of a running task ([`Command`]).

use std::sync::Arc;

use keylime_attestation::SeverityPolicy;
use keylime_store::Store;
use tokio::sync::Semaphore;

use crate::policy_cache::PolicyCache;
use crate::revocation::Notifier;
use crate::settings::PollTiming;
use crate::tls::AgentClientTls;

/// What the API asks of a running agent task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Run,
    /// Stop polling (state already set by the API).
    Stop,
    /// Delete the agent's record and stop.
    Terminate,
}

/// Everything agent tasks share.
pub struct PullContext {
    pub store: Store,
    pub timing: PollTiming,
    pub agent_tls: Arc<AgentClientTls>,
    pub severity: Arc<SeverityPolicy>,
    /// Index of the highest severity label.
    pub max_severity: u32,
    pub polls: Semaphore,
    pub require_mtls: bool,
    /// Revocation notices (webhook, agents).
    pub notifier: Arc<Notifier>,
    /// Prepared runtime and measured-boot policies.
    pub policies: Arc<PolicyCache>,
}
