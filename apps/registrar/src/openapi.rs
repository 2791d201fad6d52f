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
        .stored()
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
            .stored()
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
                .stored()
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
        .stored()
        .reply(200, "The record", Reply::envelope(record))
        .reply(400, plain_http, Reply::ErrorOrEmpty)
        .reply(404, "Unknown or not activated", Reply::Error),
    );
    d.add(
        Operation::new(HttpMethod::Delete, AGENT, "deleteAgent", "Forget an agent")
            .admin()
            .stored()
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
    use keylime_api::openapi::{Served, check_route_coverage};

    /// The operations that may describe `route` (one per path that reaches it).
    /// Exhaustive: a new route does not compile until it is described.
    fn described_by(route: &Route) -> Vec<&'static str> {
        match route {
            Route::Version => vec!["getVersion", "getVersionAtPrefix"],
            Route::ListAgents => vec!["listAgents"],
            Route::Register(None) => vec!["registerAgentFromBody"],
            Route::Register(Some(_)) => vec!["registerAgent"],
            Route::Activate(_) => vec![
                "activateAgent",
                "activateAgentAtActivate",
                "activateAgentAtActivatePost",
            ],
            Route::ShowAgent(_) => vec!["showAgent"],
            Route::DeleteAgent(_) => vec!["deleteAgent"],
        }
    }

    #[test]
    fn description_and_route_table_agree() {
        let words = [
            "agents", "A", "activate", "version", "verify", "keys", "quotes",
        ];
        let first = ["version", "versions", "v3.0", "v2.7", "v1.0", "agents"];
        let served = check_route_coverage(&description(), &first, &words, |method, path| {
            let route = resolve(&method.parse().ok()?, path).ok()?;
            Some(Served {
                ids: described_by(&route),
                admin: route.admin_action().is_some(),
            })
        });
        assert!(served > 100, "only {served} requests were served");
    }

    #[test]
    fn committed_copy_is_current() {
        keylime_testkit::check_openapi_copy("registrar.json", &description_json());
    }
}
