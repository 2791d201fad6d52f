//! The tenant's registrar and verifier commands (PROTOCOL.md §2.4, §5.3–5.7): show, list,
//! bulk status, delete (with the 202 → poll-until-404 path, Q32), reactivate, stop and
//! registrar delete. Each returns a typed report holding the upstream `results` document,
//! members in the order the server sent them, with `operational_state` numbers replaced by
//! upstream's state names.

use std::collections::BTreeMap;

use keylime_api::verifier::OperationalState;
use keylime_api::version::ApiVersion;
use serde_json::Value;

use crate::Tenant;
use crate::error::TenantError;
use crate::pyjson::PyValue;

/// Keys the upstream tenant requires in a registrar record.
const REQUIRED_REGISTRAR_KEYS: [&str; 5] = ["aik_tpm", "regcount", "ek_tpm", "ip", "port"];

/// `regstatus`: the registrar's record of one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrarStatusReport {
    pub agent_id: String,
    /// The registrar's `results` plus `"operational_state": "Registered"` (upstream).
    pub record: PyValue,
}

/// `cvstatus`: the verifier's status of one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentStatusReport {
    pub agent_id: String,
    pub operational_state: Option<OperationalState>,
    /// The verifier's `results` with `operational_state` as its display name.
    pub results: PyValue,
}

/// `status`: the verifier's view when it has the agent, else the registrar's.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusReport {
    Verifier(AgentStatusReport),
    RegistrarOnly(RegistrarStatusReport),
}

/// `cvlist` / `reglist`: agent ids and the raw `results`.
#[derive(Debug, Clone, PartialEq)]
pub struct IdList {
    pub ids: Vec<String>,
    pub results: PyValue,
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
}

/// Replace a numeric `operational_state` by upstream's display name; returns the state.
fn name_state(status: &mut PyValue) -> Option<OperationalState> {
    let code = status.get("operational_state")?.as_i64()?;
    let state = OperationalState::from_code(code)?;
    status.set(
        "operational_state",
        PyValue::String(state.display_name().into()),
    );
    Some(state)
}

impl Tenant {
    pub(crate) async fn verifier_version(&self) -> ApiVersion {
        self.verifier.negotiate_service_version().await
    }

    pub(crate) async fn registrar_version(&self) -> ApiVersion {
        self.registrar.negotiate_service_version().await
    }

    /// The registrar's record of `agent_id` (raw `results`, in the registrar's order),
    /// checked for upstream's required keys.
    pub(crate) async fn registrar_record(&self, agent_id: &str) -> Result<PyValue, TenantError> {
        let v = self.registrar_version().await;
        let path = format!("/v{v}/agents/{agent_id}");
        let reply = self.registrar.get(&path).await?;
        match reply.code {
            200 => {}
            404 => {
                return Err(TenantError::NotRegistered {
                    agent_id: agent_id.into(),
                    registrar: self.registrar.name.clone(),
                    message: reply.message(),
                });
            }
            _ => return Err(self.registrar.unexpected("GET", &path, &reply)),
        }
        let record = reply.results_in_order();
        for key in REQUIRED_REGISTRAR_KEYS {
            if record.get(key).is_none() {
                return Err(self
                    .registrar
                    .malformed(&path, format!("the agent record lacks {key:?}")));
            }
        }
        Ok(record)
    }

    /// `-c regstatus`.
    pub async fn regstatus(&self, agent_id: &str) -> Result<RegistrarStatusReport, TenantError> {
        let mut record = self.registrar_record(agent_id).await?;
        record.set(
            "operational_state",
            PyValue::String(OperationalState::Registered.display_name().into()),
        );
        Ok(RegistrarStatusReport {
            agent_id: agent_id.into(),
            record,
        })
    }

    /// The verifier's status, or `None` on 404.
    pub(crate) async fn verifier_status(
        &self,
        agent_id: &str,
    ) -> Result<Option<AgentStatusReport>, TenantError> {
        let v = self.verifier_version().await;
        let path = format!("/v{v}/agents/{agent_id}");
        let reply = self.verifier.get(&path).await?;
        match reply.code {
            200 => {
                let mut results = reply.results_in_order();
                if !results.is_object() {
                    return Err(self.verifier.malformed(&path, "results is not an object"));
                }
                let operational_state = name_state(&mut results);
                Ok(Some(AgentStatusReport {
                    agent_id: agent_id.into(),
                    operational_state,
                    results,
                }))
            }
            404 => Ok(None),
            _ => Err(self.verifier.unexpected("GET", &path, &reply)),
        }
    }

    /// `-c cvstatus`: fails when the verifier does not have the agent.
    pub async fn cvstatus(&self, agent_id: &str) -> Result<AgentStatusReport, TenantError> {
        self.verifier_status(agent_id)
            .await?
            .ok_or_else(|| TenantError::NotOnVerifier {
                agent_id: agent_id.into(),
                verifier: self.verifier.name.clone(),
            })
    }

    /// `-c status`: the agent must be registered; the verifier's status when it has it.
    pub async fn status(&self, agent_id: &str) -> Result<StatusReport, TenantError> {
        let reg = self.regstatus(agent_id).await?;
        Ok(match self.verifier_status(agent_id).await? {
            Some(s) => StatusReport::Verifier(s),
            None => StatusReport::RegistrarOnly(reg),
        })
    }

    /// `-c cvlist`: agent ids at the verifier (list of one-element lists, or flat, Q1).
    pub async fn cvlist(&self) -> Result<IdList, TenantError> {
        let v = self.verifier_version().await;
        let vid = self.settings.verifier_id.as_deref().unwrap_or("");
        let path = format!("/v{v}/agents/?verifier={vid}");
        let reply = self.verifier.get(&path).await?;
        if reply.code != 200 {
            return Err(self.verifier.unexpected("GET", &path, &reply));
        }
        let ids = uuids(&reply.envelope.results).ok_or_else(|| {
            self.verifier
                .malformed(&path, "results.uuids is not a list of ids")
        })?;
        Ok(IdList {
            ids,
            results: reply.results_in_order(),
        })
    }

    /// `-c reglist`: agent ids at the registrar.
    pub async fn reglist(&self) -> Result<IdList, TenantError> {
        let v = self.registrar_version().await;
        let path = format!("/v{v}/agents/");
        let reply = self.registrar.get(&path).await?;
        if reply.code != 200 {
            return Err(self.registrar.unexpected("GET", &path, &reply));
        }
        let ids = uuids(&reply.envelope.results).ok_or_else(|| {
            self.registrar
                .malformed(&path, "results.uuids is not a list of ids")
        })?;
        Ok(IdList {
            ids,
            results: reply.results_in_order(),
        })
    }

    /// `-c bulkinfo`: every agent's status at the verifier.
    pub async fn bulkinfo(&self) -> Result<BulkReport, TenantError> {
        let v = self.verifier_version().await;
        let vid = self.settings.verifier_id.as_deref().unwrap_or("");
        let path = format!("/v{v}/agents/?bulk=True&verifier={vid}");
        let reply = self.verifier.get(&path).await?;
        if reply.code != 200 {
            return Err(self.verifier.unexpected("GET", &path, &reply));
        }
        let mut results = reply.results_in_order();
        let Some(map) = results.members_mut() else {
            return Err(self.verifier.malformed(&path, "results is not an object"));
        };
        let mut states = BTreeMap::new();
        for (id, status) in map.iter_mut() {
            let state = name_state(status);
            if state.is_none() {
                status.set(
                    "operational_state",
                    PyValue::String("Not applicable (Push Mode)".into()),
                );
            }
            states.insert(id.clone(), state);
        }
        Ok(BulkReport { states, results })
    }

    /// `-c delete`: remove the agent from the verifier (not from the registrar, as
    /// upstream). A 202 is followed by status polls until 404 (Q32).
    pub async fn delete(&self, agent_id: &str) -> Result<DeleteOutcome, TenantError> {
        if self.verifier_status(agent_id).await?.is_none() {
            return Ok(DeleteOutcome::AlreadyAbsent);
        }
        let v = self.verifier_version().await;
        let path = format!("/v{v}/agents/{agent_id}");
        let reply = self.verifier.delete(&path).await?;
        match reply.code {
            200 => Ok(DeleteOutcome::Deleted),
            404 => Ok(DeleteOutcome::AlreadyAbsent),
            202 => {
                let retry = &self.settings.retry;
                for n in 1..=retry.max_retries {
                    if self.verifier_status(agent_id).await?.is_none() {
                        return Ok(DeleteOutcome::DeletedAfterPolling { polls: n });
                    }
                    tokio::time::sleep(retry.delay(n)).await;
                }
                Err(TenantError::GaveUp {
                    what: format!(
                        "agent {agent_id} was still not deleted from the {}",
                        self.verifier.name
                    ),
                    tries: retry.max_retries,
                })
            }
            _ => Err(self.verifier.unexpected("DELETE", &path, &reply)),
        }
    }

    /// `-c reactivate`.
    pub async fn reactivate(&self, agent_id: &str) -> Result<(), TenantError> {
        self.cvstatus(agent_id).await?;
        let v = self.verifier_version().await;
        let path = format!("/v{v}/agents/{agent_id}/reactivate");
        let reply = self.verifier.put_empty(&path).await?;
        if reply.code != 200 {
            return Err(self.verifier.unexpected("PUT", &path, &reply));
        }
        Ok(())
    }

    /// `PUT …/stop` (after a failed key derivation check, as upstream).
    pub async fn stop(&self, agent_id: &str) -> Result<(), TenantError> {
        let v = self.verifier_version().await;
        let path = format!("/v{v}/agents/{agent_id}/stop");
        let reply = self.verifier.put_empty(&path).await?;
        if reply.code != 200 {
            return Err(self.verifier.unexpected("PUT", &path, &reply));
        }
        Ok(())
    }

    /// `-c regdelete`: remove the agent from the registrar.
    pub async fn regdelete(&self, agent_id: &str) -> Result<(), TenantError> {
        let v = self.registrar_version().await;
        let path = format!("/v{v}/agents/{agent_id}");
        let reply = self.registrar.delete(&path).await?;
        match reply.code {
            200 => Ok(()),
            404 => Err(TenantError::NotRegistered {
                agent_id: agent_id.into(),
                registrar: self.registrar.name.clone(),
                message: reply.message(),
            }),
            _ => Err(self.registrar.unexpected("DELETE", &path, &reply)),
        }
    }
}

/// `results.uuids` as ids: flat strings or one-element lists (Q1).
fn uuids(results: &Value) -> Option<Vec<String>> {
    let mut ids = Vec::new();
    for item in results.get("uuids")?.as_array()? {
        match item {
            Value::String(s) => ids.push(s.clone()),
            Value::Array(row) => {
                for cell in row {
                    ids.push(cell.as_str()?.to_owned());
                }
            }
            _ => return None,
        }
    }
    Some(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_list_shapes() {
        assert_eq!(
            uuids(&json!({"uuids": [["a"], ["b"]]})).unwrap(),
            ["a", "b"]
        );
        assert_eq!(uuids(&json!({"uuids": ["a", "b"]})).unwrap(), ["a", "b"]);
        assert_eq!(uuids(&json!({"uuids": []})).unwrap(), Vec::<String>::new());
        assert!(uuids(&json!({"uuids": [1]})).is_none());
        assert!(uuids(&json!({})).is_none());
    }

    #[test]
    fn state_names_keep_the_member_in_place() {
        let mut s = PyValue::parse(br#"{"operational_state": 3, "x": 1}"#).unwrap();
        assert_eq!(name_state(&mut s), Some(OperationalState::GetQuote));
        assert_eq!(s.to_string(), r#"{"operational_state":"Get Quote","x":1}"#);
        let mut s = PyValue::parse(br#"{"operational_state": 99}"#).unwrap();
        assert_eq!(name_state(&mut s), None);
    }
}
