//! The registrar's OpenAPI description (`keylime_registrar --print-openapi`): every route
//! of [`crate::routes`] with its request and response bodies, whose schemas come from the
//! `keylime-api` wire types. The tests prove the description and the route table agree in
//! both directions.

use keylime_api::openapi::{Description, Operation, Reply};
use keylime_api::registrar::{ActivateRequest, AgentList, AgentRecord, RegisterRequest};
use keylime_api::{EmptyResults, RegisterResponse, VersionInfo};
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::HttpMethod;

const AGENTS: &str = "/{api_version}/agents";
const AGENT: &str = "/{api_version}/agents/{agent_id}";
const ACTIVATE: &str = "/{api_version}/agents/{agent_id}/activate";

/// The registrar's description.
pub fn description() -> OpenApi {
    let mut d = Description::new(
        "Keylime registrar",
        "Agent registration and activation (plain HTTP or HTTPS) and the admin routes \
         (HTTPS with a trusted client certificate). Every path also answers with a trailing \
         slash.",
    );
    let version = d.schema::<VersionInfo>();
    let empty = d.schema::<EmptyResults>();
    let list = d.schema::<AgentList>();
    let record = d.schema::<AgentRecord>();
    let register = d.schema::<RegisterRequest>();
    let blob = d.schema::<RegisterResponse>();
    let activate = d.schema::<ActivateRequest>();

    for (path, id) in [
        ("/version", "getVersion"),
        ("/{api_version}", "getVersionAtPrefix"),
    ] {
        d.add(
            Operation::new(HttpMethod::Get, path, id, "Supported API versions").reply(
                200,
                "The versions",
                Reply::envelope(version.clone()),
            ),
        );
    }
    let plain_http = "Admin route reached over plain HTTP";
    d.add(
        Operation::new(
            HttpMethod::Get,
            AGENTS,
            "listAgents",
            "Registered agent ids",
        )
        .admin()
        .reply(200, "The ids", Reply::envelope(list))
        .reply(400, plain_http, Reply::ErrorOrEmpty),
    );
    for (path, id) in [(AGENTS, "registerAgentFromBody"), (AGENT, "registerAgent")] {
        d.add(
            Operation::new(
                HttpMethod::Post,
                path,
                id,
                "Register an agent's TPM identity; returns the credential challenge",
            )
            .body(register.clone())
            .reply(200, "The challenge", Reply::envelope(blob.clone()))
            .reply(400, "Invalid registration", Reply::Error)
            .reply(403, "Known id with another TPM identity", Reply::Error)
            .reply(413, "Body too large", Reply::Error),
        );
    }
    for (method, path, id) in [
        (HttpMethod::Put, AGENT, "activateAgent"),
        (HttpMethod::Put, ACTIVATE, "activateAgentAtActivate"),
        (HttpMethod::Post, ACTIVATE, "activateAgentAtActivatePost"),
    ] {
        d.add(
            Operation::new(method, path, id, "Prove the credential (activation)")
                .body(activate.clone())
                .reply(200, "Activated", Reply::envelope(empty.clone()))
                .reply(400, "Malformed body or wrong tag", Reply::Error)
                .reply(404, "Unknown agent", Reply::Error)
                .reply(409, "No pending challenge", Reply::Error)
                .reply(413, "Body too large", Reply::Error),
        );
    }
    d.add(
        Operation::new(
            HttpMethod::Get,
            AGENT,
            "showAgent",
            "An activated agent's identity",
        )
        .admin()
        .reply(200, "The record", Reply::envelope(record))
        .reply(400, plain_http, Reply::ErrorOrEmpty)
        .reply(404, "Unknown or not activated", Reply::Error),
    );
    d.add(
        Operation::new(HttpMethod::Delete, AGENT, "deleteAgent", "Forget an agent")
            .admin()
            .reply(200, "Deleted", Reply::envelope(empty))
            .reply(400, plain_http, Reply::ErrorOrEmpty)
            .reply(404, "Unknown agent", Reply::Error),
    );
    d.finish()
}

/// The description as pretty JSON.
pub fn description_json() -> String {
    keylime_api::openapi::to_json(&description())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{Route, resolve};
    use axum::http::Method;
    use keylime_api::openapi::{concrete_paths, find_operation, operations, version_prefixes};
    use serde_json::Value;

    /// The operations that may describe `route` (one per path that reaches it).
    /// Exhaustive: a new route does not compile until it is described.
    fn described_by(route: &Route) -> &'static [&'static str] {
        match route {
            Route::Version => &["getVersion", "getVersionAtPrefix"],
            Route::ListAgents => &["listAgents"],
            Route::Register(None) => &["registerAgentFromBody"],
            Route::Register(Some(_)) => &["registerAgent"],
            Route::Activate(_) => &[
                "activateAgent",
                "activateAgentAtActivate",
                "activateAgentAtActivatePost",
            ],
            Route::ShowAgent(_) => &["showAgent"],
            Route::DeleteAgent(_) => &["deleteAgent"],
        }
    }

    fn doc() -> Value {
        serde_json::from_str(&description_json()).unwrap()
    }

    #[test]
    fn every_described_operation_is_served() {
        let doc = doc();
        let ops = operations(&doc);
        assert_eq!(ops.len(), 10, "{ops:?}");
        for (method, template, id) in ops {
            let method: Method = method.parse().unwrap();
            for path in concrete_paths(&template) {
                let route = resolve(&method, &path)
                    .unwrap_or_else(|e| panic!("{method} {path} ({id}) is not served: {e:?}"));
                assert!(
                    described_by(&route).contains(&id.as_str()),
                    "{method} {path} is {route:?}, described as {id}"
                );
            }
        }
    }

    /// Walks method × path combinations built from the route table's words (and some it
    /// does not use): every request the registrar serves must find its operation.
    #[test]
    fn every_served_route_is_described() {
        let doc = doc();
        let mut first: Vec<String> = version_prefixes();
        first.extend(["version", "versions", "v3.0", "v2.7", "v1.0", "agents"].map(String::from));
        let words = [
            "agents", "A", "activate", "version", "verify", "keys", "quotes",
        ];
        let methods = [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::HEAD,
            Method::OPTIONS,
        ];
        let mut paths = vec!["/".to_owned()];
        for f in &first {
            let one = format!("/{f}");
            paths.push(one.clone());
            for w1 in words {
                let two = format!("{one}/{w1}");
                paths.push(two.clone());
                for w2 in words {
                    let three = format!("{two}/{w2}");
                    paths.push(three.clone());
                    for w3 in words {
                        paths.push(format!("{three}/{w3}"));
                    }
                }
            }
        }
        let mut served = 0;
        for path in &paths {
            for slash in ["", "/"] {
                let path = format!("{path}{slash}");
                for method in &methods {
                    let Ok(route) = resolve(method, &path) else {
                        continue;
                    };
                    served += 1;
                    let op = find_operation(&doc, method.as_str(), &path)
                        .unwrap_or_else(|| panic!("{method} {path} ({route:?}) is not described"));
                    let id = op["operationId"].as_str().unwrap();
                    assert!(
                        described_by(&route).contains(&id),
                        "{method} {path} is {route:?}, described as {id}"
                    );
                }
            }
        }
        assert!(served > 100, "only {served} requests were served");
    }

    #[test]
    fn admin_operations_need_a_client_certificate() {
        let doc = doc();
        for (method, template, id) in operations(&doc) {
            let route = resolve(&method.parse().unwrap(), &concrete_paths(&template)[0]).unwrap();
            let op = &doc["paths"][&template][method.to_ascii_lowercase()];
            assert_eq!(
                route.admin_action().is_some(),
                op.get("security").is_some(),
                "{id}"
            );
        }
    }

    #[test]
    fn committed_copy_is_current() {
        keylime_testkit::check_openapi_copy("registrar.json", &description_json());
    }
}
