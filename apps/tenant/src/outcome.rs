//! What the tenant's commands found or did: the result types the commands return and
//! [`crate::report`] renders (as upstream's printed lines and as the `--json` document).
//! Below both, so the commands can print along the way with `report`'s renderers.

use std::collections::BTreeMap;

use keylime_api::verifier::OperationalState;

use crate::pyjson::PyValue;
use crate::settings::Endpoint;

/// A completed enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOutcome {
    pub agent_id: String,
    pub agent: Endpoint,
    pub agent_api_version: String,
    /// The identity quote's nonce.
    pub nonce: String,
    /// U (and the payload, if any) were posted to the agent.
    pub key_delivered: bool,
    /// `/keys/verify` tries until the HMAC matched (with `--verify`).
    pub key_verified_after: Option<u32>,
    /// State at the verifier right after the add.
    pub operational_state: Option<OperationalState>,
    /// The verifier's name as printed (`Verifier default (…)` in an update, once the delete
    /// read the agent's status there).
    pub verifier: String,
    /// Status reads that did not find the agent yet after the POST.
    pub status_tries: u32,
}

/// Which kind of named policy a command manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Runtime (IMA) policies, `/allowlists`.
    Runtime,
    /// Measured-boot reference states, `/mbpolicies`.
    MeasuredBoot,
}

impl PolicyKind {
    /// The verifier's collection path segment.
    pub fn collection(self) -> &'static str {
        match self {
            PolicyKind::Runtime => "allowlists",
            PolicyKind::MeasuredBoot => "mbpolicies",
        }
    }

    /// `results` key of the name list.
    pub fn names_key(self) -> &'static str {
        match self {
            PolicyKind::Runtime => "runtimepolicy names",
            PolicyKind::MeasuredBoot => "mbpolicy names",
        }
    }

    /// `results` key holding the policy in a show answer.
    pub fn policy_key(self) -> &'static str {
        match self {
            PolicyKind::Runtime => "runtime_policy",
            PolicyKind::MeasuredBoot => "mb_policy",
        }
    }

    /// e.g. `runtime policy`.
    pub fn describe(self) -> &'static str {
        match self {
            PolicyKind::Runtime => "runtime policy",
            PolicyKind::MeasuredBoot => "measured boot policy",
        }
    }

    pub(crate) fn name_option(self) -> &'static str {
        match self {
            PolicyKind::Runtime => "--runtime-policy-name",
            PolicyKind::MeasuredBoot => "--mb-policy-name",
        }
    }
}

/// The answer to add, update or delete.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyReply {
    pub kind: PolicyKind,
    pub name: String,
    /// HTTP status (201 for add/update, 204 for delete from upstream's verifier).
    pub code: u16,
    /// The verifier's JSON answer; none for an empty body (a 204).
    pub response: Option<PyValue>,
}

/// The answer to show.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyShow {
    pub kind: PolicyKind,
    pub name: String,
    pub code: u16,
    pub response: PyValue,
    /// The stored policy (JSON text, checked to parse), or none.
    pub policy: Option<String>,
}

/// The answer to list.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyNames {
    pub kind: PolicyKind,
    pub code: u16,
    pub response: PyValue,
    pub names: Vec<String>,
}

/// `regstatus`: the registrar's record of one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrarStatusReport {
    pub agent_id: String,
    /// Upstream's selection of the registrar's record (the required keys, `mtls_cert`,
    /// `ekcert`, `provider_keys` when sent) plus `"operational_state": "Registered"`.
    pub record: PyValue,
    /// e.g. `Registrar (127.0.0.1:8891)`.
    pub registrar: String,
    pub endpoint: Endpoint,
}

/// `cvstatus`: the verifier's status of one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentStatusReport {
    pub agent_id: String,
    pub operational_state: Option<OperationalState>,
    /// The verifier's `results` with `operational_state` as its display name.
    pub results: PyValue,
    /// The verifier's name as printed with the status, e.g. `Verifier (127.0.0.1:8881)`.
    pub verifier: String,
}

impl AgentStatusReport {
    /// The verifier's name once its status of the agent is known (upstream's tenant takes
    /// `verifier_id`, `verifier_ip` and `verifier_port` from it): `Verifier default (…)`.
    pub fn named_verifier(&self) -> String {
        let field = |k: &str| self.results.get(k).map(PyValue::text);
        match (
            field("verifier_id"),
            field("verifier_ip"),
            field("verifier_port"),
        ) {
            (Some(id), Some(ip), Some(port)) => format!("Verifier {id} ({ip}:{port})"),
            _ => self.verifier.clone(),
        }
    }

    /// `Agent <id> (<ip>:<port>)` from the status, as upstream names the agent once known.
    pub fn named_agent(&self) -> String {
        match (self.results.get("ip"), self.results.get("port")) {
            (Some(PyValue::String(ip)), Some(port)) => {
                format!("Agent {} ({ip}:{})", self.agent_id, port.text())
            }
            _ => format!("Agent {}", self.agent_id),
        }
    }
}

/// `status`: the registrar's record, then the verifier's status (both must have the agent,
/// as upstream).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport {
    pub registrar: RegistrarStatusReport,
    pub verifier: AgentStatusReport,
}

/// `cvlist` / `reglist`: agent ids, the raw `results` and the whole answer.
#[derive(Debug, Clone, PartialEq)]
pub struct IdList {
    pub ids: Vec<String>,
    pub results: PyValue,
    /// The whole answer (envelope), in the server's order.
    pub response: PyValue,
    /// e.g. `Verifier (127.0.0.1:8881)`.
    pub source: String,
    pub endpoint: Endpoint,
}

/// How `regdelete` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegDeleteOutcome {
    Deleted,
    /// The registrar did not have the agent (404): upstream's tenant logs the answer and
    /// succeeds.
    Absent,
}

/// `bulkinfo`: every agent's state and the `results` with state names.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkReport {
    pub states: BTreeMap<String, Option<OperationalState>>,
    pub results: PyValue,
}

/// How `delete` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The verifier deleted the agent at once (200).
    Deleted,
    /// The verifier accepted the deletion (202) and it completed after `polls` status checks.
    DeletedAfterPolling { polls: u32 },
    /// The verifier did not have the agent.
    AlreadyAbsent,
    /// The verifier had the agent but answered the DELETE with 404 (deleted meanwhile).
    GoneMeanwhile,
}
