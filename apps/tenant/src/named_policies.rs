//! The verifier's named policies (PROTOCOL.md §5.8, §11 Q16): add, update, delete, show and
//! list runtime policies (`/v2.x/allowlists/{name}`) and measured-boot policies
//! (`/v2.x/mbpolicies/{name}`). Every command keeps the verifier's answer in document order
//! (upstream's tenant prints it as a Python `dict`) and checks its shape: a success whose
//! body is not the v2 envelope, or whose `results` lack the documented fields, is an error.
//! A refusal (4xx, 5xx) is printed to the console as upstream's tenant prints it and is the
//! error's message too ([`TenantError::Refused`]).

use serde_json::json;

use crate::Tenant;
use crate::error::TenantError;
use crate::http::Reply;
use crate::outcome::{PolicyKind, PolicyNames, PolicyReply, PolicyShow};
use crate::policy_options::PolicyOptions;
use crate::pyjson::PyValue;
use crate::report;
use crate::services::whole_answer;

/// `name` as one URL path segment (RFC 3986 unreserved characters kept, the rest
/// percent-encoded), so a name cannot reach another route.
fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn required_name(kind: PolicyKind, name: &str, action: &str) -> Result<String, TenantError> {
    if name.is_empty() {
        return Err(TenantError::Policy(format!(
            "{} is required to {action} a {}",
            kind.name_option(),
            kind.describe()
        )));
    }
    Ok(name.to_owned())
}

impl Tenant {
    async fn policy_path(&self, kind: PolicyKind, name: Option<&str>) -> String {
        let v = self.verifier_version().await;
        match name {
            Some(n) => format!("/v{v}/{}/{}", kind.collection(), path_segment(n)),
            None => format!("/v{v}/{}/", kind.collection()),
        }
    }

    /// A refused request: the answer printed (after `header`, if any), and the error. An
    /// answer that is not a JSON object (upstream's tenant prints `{}` for it) keeps our
    /// message, which names the status and the body (FINDINGS.md).
    fn refused(
        &self,
        path: &str,
        method: &'static str,
        reply: &Reply,
        header: Option<String>,
    ) -> TenantError {
        if let Some(h) = header {
            self.say(&h);
        }
        let answer = whole_answer(reply);
        if !answer.is_object() || reply.body.iter().all(u8::is_ascii_whitespace) {
            return self.verifier.unexpected(method, path, reply);
        }
        let answer = answer.repr();
        self.say(&answer);
        TenantError::Refused {
            code: reply.code,
            answer,
        }
    }

    /// A 2xx answer whose body, if any, is a JSON object.
    fn change_reply(
        &self,
        kind: PolicyKind,
        name: String,
        method: &'static str,
        path: &str,
        reply: Reply,
    ) -> Result<PolicyReply, TenantError> {
        if reply.code >= 400 {
            return Err(self.refused(path, method, &reply, None));
        }
        if !(200..300).contains(&reply.code) {
            return Err(self.verifier.unexpected(method, path, &reply));
        }
        let response = if reply.body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(self.json_object(path, &reply.body)?)
        };
        Ok(PolicyReply {
            kind,
            name,
            code: reply.code,
            response,
        })
    }

    fn json_object(&self, path: &str, body: &[u8]) -> Result<PyValue, TenantError> {
        let doc = PyValue::parse(body).map_err(|e| {
            self.verifier
                .malformed(path, format!("body is not JSON: {e}"))
        })?;
        if !matches!(doc, PyValue::Object(_)) {
            return Err(self.verifier.malformed(path, "body is not a JSON object"));
        }
        Ok(doc)
    }

    /// A 2xx answer with a JSON `results` object.
    fn results_reply(&self, path: &str, reply: &Reply) -> Result<(PyValue, PyValue), TenantError> {
        if !(200..300).contains(&reply.code) {
            return Err(self.verifier.unexpected("GET", path, reply));
        }
        let doc = self.json_object(path, &reply.body)?;
        let results = match doc.get("results") {
            Some(r @ PyValue::Object(_)) => r.clone(),
            _ => return Err(self.verifier.malformed(path, "results is not an object")),
        };
        Ok((doc, results))
    }

    /// `-c addruntimepolicy`: `POST /allowlists/{name}` with the checked policy.
    pub async fn add_runtime_policy(
        &self,
        opts: &PolicyOptions,
    ) -> Result<PolicyReply, TenantError> {
        if opts.runtime_policy.is_none() && opts.allowlist.is_none() {
            return Err(TenantError::Argument(
                "--allowlist or --runtime-policy is required to add a runtime policy".into(),
            ));
        }
        self.send_runtime_policy(opts, "POST").await
    }

    /// `-c updateruntimepolicy`: `PUT /allowlists/{name}`.
    pub async fn update_runtime_policy(
        &self,
        opts: &PolicyOptions,
    ) -> Result<PolicyReply, TenantError> {
        self.send_runtime_policy(opts, "PUT").await
    }

    async fn send_runtime_policy(
        &self,
        opts: &PolicyOptions,
        method: &'static str,
    ) -> Result<PolicyReply, TenantError> {
        let kind = PolicyKind::Runtime;
        let action = if method == "POST" { "add" } else { "update" };
        let name = required_name(
            kind,
            opts.runtime_policy_name.as_deref().unwrap_or(""),
            action,
        )?;
        let resolved = opts.resolve()?;
        let body = json!({
            "tpm_policy": resolved.tpm_policy_text(),
            "runtime_policy": resolved.runtime_policy,
            "runtime_policy_key": resolved.runtime_policy_key,
        });
        let path = self.policy_path(kind, Some(&name)).await;
        let reply = if method == "POST" {
            self.verifier.post_json(&path, &body).await?
        } else {
            self.verifier.put_json(&path, &body).await?
        };
        let out = self.change_reply(kind, name, method, &path, reply)?;
        tracing::info!(name = %out.name, code = out.code, "runtime policy sent to the verifier");
        Ok(out)
    }

    /// `-c addmbpolicy`: `POST /mbpolicies/{name}` with `{"mb_policy": <text or null>}`.
    pub async fn add_mb_policy(&self, opts: &PolicyOptions) -> Result<PolicyReply, TenantError> {
        self.send_mb_policy(opts, "POST").await
    }

    /// `-c updatembpolicy`: `PUT /mbpolicies/{name}` (upstream's verifier answers 409 when
    /// the name does not exist).
    pub async fn update_mb_policy(&self, opts: &PolicyOptions) -> Result<PolicyReply, TenantError> {
        self.send_mb_policy(opts, "PUT").await
    }

    async fn send_mb_policy(
        &self,
        opts: &PolicyOptions,
        method: &'static str,
    ) -> Result<PolicyReply, TenantError> {
        let kind = PolicyKind::MeasuredBoot;
        let action = if method == "POST" { "add" } else { "update" };
        let name = required_name(kind, opts.mb_policy_name.as_deref().unwrap_or(""), action)?;
        let resolved = opts.resolve()?;
        let body = json!({ "mb_policy": resolved.mb_policy });
        let path = self.policy_path(kind, Some(&name)).await;
        let reply = if method == "POST" {
            self.verifier.post_json(&path, &body).await?
        } else {
            self.verifier.put_json(&path, &body).await?
        };
        let out = self.change_reply(kind, name, method, &path, reply)?;
        tracing::info!(name = %out.name, code = out.code, "measured boot policy sent to the verifier");
        Ok(out)
    }

    /// `-c deleteruntimepolicy` / `-c deletembpolicy`.
    pub async fn delete_policy(
        &self,
        kind: PolicyKind,
        name: &str,
    ) -> Result<PolicyReply, TenantError> {
        let name = required_name(kind, name, "delete")?;
        let path = self.policy_path(kind, Some(&name)).await;
        let reply = self.verifier.delete(&path).await?;
        self.change_reply(kind, name, "DELETE", &path, reply)
    }

    /// `-c showruntimepolicy` / `-c showmbpolicy`.
    pub async fn show_policy(
        &self,
        kind: PolicyKind,
        name: &str,
    ) -> Result<PolicyShow, TenantError> {
        let name = required_name(kind, name, "show")?;
        let path = self.policy_path(kind, Some(&name)).await;
        let reply = self.verifier.get_policy(&path).await?;
        if reply.code >= 400 {
            let header = report::policy_show_header(kind, reply.code);
            return Err(self.refused(&path, "GET", &reply, Some(header)));
        }
        let (response, results) = self.results_reply(&path, &reply)?;
        let policy = match results.get(kind.policy_key()) {
            Some(PyValue::Null) => None,
            Some(PyValue::String(text)) => {
                if let Err(e) = PyValue::parse(text.as_bytes()) {
                    return Err(self.verifier.malformed(
                        &path,
                        format!("results.{} is not JSON text: {e}", kind.policy_key()),
                    ));
                }
                Some(text.clone())
            }
            _ => {
                return Err(self.verifier.malformed(
                    &path,
                    format!("results.{} is neither a string nor null", kind.policy_key()),
                ));
            }
        };
        Ok(PolicyShow {
            kind,
            name,
            code: reply.code,
            response,
            policy,
        })
    }

    /// `-c listruntimepolicy` / `-c listmbpolicy`.
    pub async fn list_policies(&self, kind: PolicyKind) -> Result<PolicyNames, TenantError> {
        let path = self.policy_path(kind, None).await;
        let reply = self.verifier.get(&path).await?;
        if reply.code >= 400 {
            let header = report::policy_list_header(kind, reply.code);
            return Err(self.refused(&path, "GET", &reply, Some(header)));
        }
        let (response, results) = self.results_reply(&path, &reply)?;
        let names = match results.get(kind.names_key()) {
            Some(PyValue::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>(),
            _ => None,
        }
        .ok_or_else(|| {
            self.verifier.malformed(
                &path,
                format!("results[{:?}] is not a list of names", kind.names_key()),
            )
        })?;
        Ok(PolicyNames {
            kind,
            code: reply.code,
            response,
            names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_one_path_segment() {
        assert_eq!(path_segment("policy-1.v2_x~"), "policy-1.v2_x~");
        assert_eq!(path_segment("a/../b?c#d"), "a%2F..%2Fb%3Fc%23d");
        assert_eq!(path_segment("é x"), "%C3%A9%20x");
    }

    #[test]
    fn missing_names_are_named() {
        let err = required_name(PolicyKind::Runtime, "", "delete").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--runtime-policy-name is required to delete a runtime policy"
        );
        let err = required_name(PolicyKind::MeasuredBoot, "", "add").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--mb-policy-name is required to add a measured boot policy"
        );
        assert_eq!(
            required_name(PolicyKind::Runtime, "x", "show").unwrap(),
            "x"
        );
    }
}
