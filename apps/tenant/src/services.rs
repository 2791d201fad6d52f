//! The tenant's registrar and verifier commands (PROTOCOL.md §2.4, §5.3–5.7): show, list,
//! bulk status, delete (with the 202 → poll-until-404 path, Q32), reactivate, stop and
//! registrar delete. Each returns a typed report holding the upstream `results` document,
//! members in the order the server sent them, with `operational_state` numbers replaced by
//! upstream's state names. What upstream's tenant logs along the way (each status it reads,
//! the registrar's and verifier's refusals) goes to the tenant's console in upstream's words.

use std::collections::BTreeMap;

use keylime_api::verifier::OperationalState;
use keylime_api::version::ApiVersion;
use serde_json::Value;

use crate::Tenant;
use crate::error::TenantError;
use crate::http::Reply;
use crate::outcome::{
    AgentStatusReport, BulkReport, DeleteOutcome, IdList, RegDeleteOutcome, RegistrarStatusReport,
    StatusReport,
};
use crate::pyjson::PyValue;
use crate::report;

/// Keys the upstream tenant requires in a registrar record.
const REQUIRED_REGISTRAR_KEYS: [&str; 5] = ["aik_tpm", "regcount", "ek_tpm", "ip", "port"];
/// The optional keys of a registrar record upstream's tenant keeps (`null` when absent),
/// after the required ones.
const OPTIONAL_REGISTRAR_KEYS: [&str; 2] = ["mtls_cert", "ekcert"];

/// The `Response code <code>: <status>` line upstream's tenant logs for a refused request
/// (`keylime_logging.log_http_response`).
pub(crate) fn response_line(reply: &Reply) -> String {
    let doc = PyValue::parse(&reply.body).ok();
    let field = |k: &str| doc.as_ref().and_then(|d| d.get(k));
    match (field("results"), field("code"), field("status")) {
        (Some(_), Some(code), Some(status)) => {
            format!("Response code {}: {}", code.text(), status.text())
        }
        _ => "Error: unexpected or malformed http response payload".into(),
    }
}

/// The whole answer in the server's order (an empty object if it is not JSON).
pub(crate) fn whole_answer(reply: &Reply) -> PyValue {
    PyValue::parse(&reply.body).unwrap_or(PyValue::Object(Vec::new()))
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
                self.say(&format!(
                    "Error: could not get agent {agent_id} data from Registrar Server: 404"
                ));
                self.say(&response_line(&reply));
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
        let raw = match self.registrar_record(agent_id).await {
            Ok(r) => r,
            Err(e @ TenantError::NotRegistered { .. }) => {
                self.say(&report::registrar_absent(
                    agent_id,
                    &self.settings.registrar,
                ));
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let mut record = PyValue::Object(Vec::new());
        for key in REQUIRED_REGISTRAR_KEYS
            .iter()
            .chain(&OPTIONAL_REGISTRAR_KEYS)
        {
            record.set(key, raw.get(key).cloned().unwrap_or(PyValue::Null));
        }
        if let Some(keys) = raw.get("provider_keys") {
            record.set("provider_keys", keys.clone());
        }
        record.set(
            "operational_state",
            PyValue::String(OperationalState::Registered.display_name().into()),
        );
        Ok(RegistrarStatusReport {
            agent_id: agent_id.into(),
            record,
            registrar: self.registrar.name.clone(),
            endpoint: self.settings.registrar.clone(),
        })
    }

    /// The verifier's status (printed to the console as upstream's tenant logs it, the
    /// verifier named `verifier`), or `None` on 404 (also logged).
    pub(crate) async fn verifier_status(
        &self,
        agent_id: &str,
        verifier: &str,
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
                let status = AgentStatusReport {
                    agent_id: agent_id.into(),
                    operational_state,
                    results,
                    verifier: verifier.into(),
                };
                self.say(&report::agent_info(&status));
                Ok(Some(status))
            }
            404 => {
                let at = &self.settings.verifier;
                self.say(&format!(
                    "Verifier at {} with Port {} does not have agent {agent_id}.",
                    at.host, at.port
                ));
                Ok(None)
            }
            _ => Err(self.verifier.unexpected("GET", &path, &reply)),
        }
    }

    /// `-c cvstatus`: fails when the verifier does not have the agent.
    pub async fn cvstatus(&self, agent_id: &str) -> Result<AgentStatusReport, TenantError> {
        self.verifier_status(agent_id, &self.verifier.name)
            .await?
            .ok_or_else(|| TenantError::NotOnVerifier {
                agent_id: agent_id.into(),
                verifier: self.verifier.name.clone(),
            })
    }

    /// `-c status`: the registrar's record (printed to the console), then the verifier's
    /// status; fails, as upstream, when either does not have the agent.
    pub async fn status(&self, agent_id: &str) -> Result<StatusReport, TenantError> {
        let registrar = self.regstatus(agent_id).await?;
        for line in report::regstatus(&registrar).lines {
            self.say(&line);
        }
        let verifier = self.cvstatus(agent_id).await?;
        Ok(StatusReport {
            registrar,
            verifier,
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
            response: whole_answer(&reply),
            source: self.verifier.name.clone(),
            endpoint: self.settings.verifier.clone(),
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
            response: whole_answer(&reply),
            source: self.registrar.name.clone(),
            endpoint: self.settings.registrar.clone(),
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
        Ok(self.delete_named(agent_id).await?.0)
    }

    /// [`Tenant::delete`], and the verifier's name as upstream's tenant knows it afterwards
    /// (with the verifier's id once it read the agent's status).
    pub(crate) async fn delete_named(
        &self,
        agent_id: &str,
    ) -> Result<(DeleteOutcome, String), TenantError> {
        let Some(status) = self.verifier_status(agent_id, &self.verifier.name).await? else {
            return Ok((DeleteOutcome::AlreadyAbsent, self.verifier.name.clone()));
        };
        let name = status.named_verifier();
        let v = self.verifier_version().await;
        let path = format!("/v{v}/agents/{agent_id}");
        let reply = self.verifier.delete(&path).await?;
        let outcome = match reply.code {
            200 => DeleteOutcome::Deleted,
            404 => DeleteOutcome::GoneMeanwhile,
            202 => self.poll_until_deleted(&status, &name).await?,
            _ => return Err(self.verifier.unexpected("DELETE", &path, &reply)),
        };
        Ok((outcome, name))
    }

    /// After a 202: status polls until the verifier no longer has the agent, logged as
    /// upstream's tenant does.
    async fn poll_until_deleted(
        &self,
        status: &AgentStatusReport,
        verifier: &str,
    ) -> Result<DeleteOutcome, TenantError> {
        let (id, agent) = (status.agent_id.as_str(), status.named_agent());
        let retry = &self.settings.retry;
        for n in 0..retry.max_retries {
            if self.verifier_status(id, verifier).await?.is_none() {
                self.say(&format!(
                    "{agent} was deleted from {verifier} after {n} tries"
                ));
                return Ok(DeleteOutcome::DeletedAfterPolling { polls: n });
            }
            let delay = retry.delay(n + 1);
            self.say(&format!(
                "{agent} still not deleted from {verifier} at try {}/{}, trying again in {} seconds...",
                n + 1,
                retry.max_retries,
                delay.as_secs_f64()
            ));
            tokio::time::sleep(delay).await;
        }
        Err(TenantError::GaveUp {
            what: format!("{agent} was not deleted from {verifier}"),
            tries: retry.max_retries,
        })
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

    /// `-c regdelete`: remove the agent from the registrar. An agent the registrar does not
    /// have is logged and, as upstream, not a failure; any other refusal is logged the same
    /// way and fails (upstream's tenant exits 0 then too, FINDINGS.md).
    pub async fn regdelete(&self, agent_id: &str) -> Result<RegDeleteOutcome, TenantError> {
        let v = self.registrar_version().await;
        let path = format!("/v{v}/agents/{agent_id}");
        let reply = self.registrar.delete(&path).await?;
        if reply.code == 200 {
            return Ok(RegDeleteOutcome::Deleted);
        }
        self.say(&format!(
            "Status command response: {} Unexpected response from registrar.",
            reply.code
        ));
        self.say(&response_line(&reply));
        match reply.code {
            404 => Ok(RegDeleteOutcome::Absent),
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
