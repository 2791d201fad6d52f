//! The verifier's OpenAPI description (`keylime_verifier --print-openapi`): every route of
//! [`crate::routes`] with its request and response bodies, whose schemas come from the
//! `keylime-api` wire types. The tests prove the description and the route table agree in
//! both directions.

use keylime_api::named_policy::{
    MbPolicyBody, MbPolicyDocument, MbPolicyNames, RuntimePolicyBody, RuntimePolicyDocument,
    RuntimePolicyNames,
};
use keylime_api::openapi::{Description, Operation, Reply, any_of, map_of, text};
use keylime_api::verification::{EvidenceRequest, EvidenceVerdict, IdentityVerdict};
use keylime_api::verifier::{AddAgentRequest, AgentList, AgentStatus};
use keylime_api::{EmptyResults, VersionInfo};
use utoipa::ToSchema;
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::HttpMethod;

const AGENT: &str = "/{api_version}/agents/{agent_id}";

/// The verifier's description.
pub fn description() -> OpenApi {
    let mut d = Description::new(
        "Keylime verifier",
        "The pull-mode verifier API over HTTPS: agent enrolment and status, named runtime and \
         measured-boot policies (admin: a trusted client certificate), the public \
         verification routes, and the push agents' proof-of-possession sessions (v3). Every path also answers with a trailing slash.",
    );
    let version = d.schema::<VersionInfo>();
    let empty = d.schema::<EmptyResults>();
    for (path, id) in [
        ("/version", "getVersion"),
        ("/versions", "getVersions"),
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
    d.add(
        Operation::new(
            HttpMethod::Get,
            "/",
            "getRoot",
            "Redirect to the push API root",
        )
        .reply(307, "To /v3.0/", Reply::Redirect),
    );
    agents(&mut d, &empty);
    verification(&mut d);
    sessions(&mut d);
    for kind in [PolicyRoutes::RUNTIME, PolicyRoutes::MEASURED_BOOT] {
        policies(&mut d, &kind, &empty);
    }
    d.finish()
}

fn agents(d: &mut Description, empty: &utoipa::openapi::RefOr<utoipa::openapi::Schema>) {
    let list = d.schema::<AgentList>();
    let status = d.schema::<AgentStatus>();
    let add = d.schema::<AddAgentRequest>();
    let empty = || Reply::envelope(empty.clone());
    d.add(
        Operation::new(
            HttpMethod::Get,
            "/{api_version}/agents",
            "listAgents",
            "Enrolled agent ids, or every agent's status with bulk=True",
        )
        .admin()
        .stored()
        .query("verifier", "Only agents of this verifier id", text())
        .query("bulk", "`True` for status documents by agent id", text())
        .reply(
            200,
            "The ids or the statuses",
            Reply::envelope(any_of([list, map_of(&AgentStatus::name())])),
        ),
    );
    d.add(
        Operation::new(
            HttpMethod::Post,
            AGENT,
            "addAgent",
            "Enrol an agent for polling",
        )
        .admin()
        .stored()
        .body(add)
        .reply(200, "Enrolled; polling starts", empty())
        .reply(400, "Invalid request", Reply::Error)
        .reply(401, "Policy signature missing or wrong", Reply::Error)
        .reply(404, "A named policy does not exist", Reply::Error)
        .reply(409, "Agent or policy name taken", Reply::Error)
        .reply(413, "Body too large", Reply::Error),
    );
    d.add(
        Operation::new(HttpMethod::Get, AGENT, "getAgent", "An agent's status")
            .admin()
            .stored()
            .reply(200, "The status", Reply::envelope(status))
            .reply(400, "Invalid agent id", Reply::Error)
            .reply(404, "Unknown agent", Reply::Error),
    );
    d.add(
        Operation::new(
            HttpMethod::Delete,
            AGENT,
            "deleteAgent",
            "Stop polling and forget",
        )
        .admin()
        .stored()
        .reply(200, "Deleted", empty())
        .reply(202, "A poll is in flight: terminating", empty())
        .reply(400, "Invalid agent id", Reply::Error)
        .reply(404, "Unknown agent", Reply::Error),
    );
    for (suffix, id, summary) in [
        ("reactivate", "reactivateAgent", "Poll the agent again"),
        ("stop", "stopAgent", "Stop polling the agent"),
    ] {
        d.add(
            Operation::new(HttpMethod::Put, &format!("{AGENT}/{suffix}"), id, summary)
                .admin()
                .stored()
                .reply(200, "Done", empty())
                .reply(400, "Invalid or unknown agent", Reply::Error),
        );
    }
}

fn verification(d: &mut Description) {
    let identity = d.schema::<IdentityVerdict>();
    let evidence = d.schema::<EvidenceRequest>();
    let verdict = d.schema::<EvidenceVerdict>();
    let mut op = Operation::new(
        HttpMethod::Get,
        "/{api_version}/verify/identity",
        "verifyIdentity",
        "Check an enrolled agent's identity quote with its stored AK",
    );
    for (name, about) in [
        ("agent_uuid", "The agent's id"),
        ("quote", "The quote string"),
        ("nonce", "The nonce it must carry"),
        ("hash_alg", "Its PCR bank"),
    ] {
        op = op.query(name, about, text());
    }
    d.add(
        op.stored()
            .reply(200, "The verdict", Reply::envelope(identity))
            .reply(400, "A parameter is missing", Reply::Error)
            .reply(404, "Unknown agent", Reply::Error),
    );
    d.add(
        Operation::new(
            HttpMethod::Post,
            "/{api_version}/verify/evidence",
            "verifyEvidence",
            "Check TPM evidence against the given policies",
        )
        .body(evidence)
        .reply(200, "The verdict", Reply::envelope(verdict))
        .reply(400, "Unusable evidence or policy", Reply::Error)
        .reply(
            403,
            "No trusted client certificate (verify_evidence = mtls)",
            Reply::Forbidden,
        )
        .reply(
            404,
            "Route turned off (verify_evidence = disabled)",
            Reply::Empty,
        )
        .reply(413, "Body too large", Reply::Error)
        .reply(429, "Too many evaluations in progress", Reply::Error),
    );
}

/// The names and wording of one kind of named policy.
struct PolicyRoutes {
    segment: &'static str,
    ids: [&'static str; 5],
}

impl PolicyRoutes {
    const RUNTIME: Self = Self {
        segment: "allowlists",
        ids: [
            "listRuntimePolicies",
            "showRuntimePolicy",
            "createRuntimePolicy",
            "updateRuntimePolicy",
            "deleteRuntimePolicy",
        ],
    };
    const MEASURED_BOOT: Self = Self {
        segment: "mbpolicies",
        ids: [
            "listMbPolicies",
            "showMbPolicy",
            "createMbPolicy",
            "updateMbPolicy",
            "deleteMbPolicy",
        ],
    };
}

fn policies(
    d: &mut Description,
    kind: &PolicyRoutes,
    empty: &utoipa::openapi::RefOr<utoipa::openapi::Schema>,
) {
    let runtime = kind.segment == "allowlists";
    let (names, doc, body) = if runtime {
        (
            d.schema::<RuntimePolicyNames>(),
            d.schema::<RuntimePolicyDocument>(),
            d.schema::<RuntimePolicyBody>(),
        )
    } else {
        (
            d.schema::<MbPolicyNames>(),
            d.schema::<MbPolicyDocument>(),
            d.schema::<MbPolicyBody>(),
        )
    };
    let [list_id, show_id, create_id, update_id, delete_id] = kind.ids;
    let list = format!("/{{api_version}}/{}", kind.segment);
    let one = format!("{list}/{{name}}");
    d.add(
        Operation::new(HttpMethod::Get, &list, list_id, "Stored policy names")
            .admin()
            .stored()
            .reply(200, "The names", Reply::envelope(names)),
    );
    d.add(
        Operation::new(HttpMethod::Get, &one, show_id, "A stored policy")
            .admin()
            .stored()
            .reply(200, "The policy", Reply::envelope(doc))
            .reply(404, "Unknown name", Reply::Error),
    );
    let created = || Reply::envelope(empty.clone());
    let mut create = Operation::new(HttpMethod::Post, &one, create_id, "Store a new policy")
        .admin()
        .stored()
        .body(body.clone())
        .reply(201, "Stored", created())
        .reply(400, "Invalid policy", Reply::Error)
        .reply(409, "Name taken", Reply::Error)
        .reply(413, "Body too large", Reply::Error);
    // A measured-boot update of a missing name is 409 (upstream); a runtime one is 404.
    let mut update = Operation::new(HttpMethod::Put, &one, update_id, "Replace a policy")
        .admin()
        .stored()
        .body(body)
        .reply(201, "Replaced", created())
        .reply(400, "Invalid policy", Reply::Error)
        .reply(413, "Body too large", Reply::Error);
    if runtime {
        create = create.reply(401, "Signature missing or wrong", Reply::Error);
        update = update
            .reply(401, "Signature missing or wrong", Reply::Error)
            .reply(404, "Unknown name", Reply::Error);
    } else {
        update = update.reply(409, "Unknown name", Reply::Error);
    }
    d.add(create);
    d.add(update);
    d.add(
        Operation::new(HttpMethod::Delete, &one, delete_id, "Delete a policy")
            .admin()
            .stored()
            .reply(204, "Deleted", Reply::Empty)
            .reply(404, "Unknown name", Reply::Error)
            .reply(409, "In use by an agent", Reply::Error),
    );
}

/// The push agents' proof-of-possession sessions (API 3.0, public): `/v3` and `/v3.0`.
fn sessions(d: &mut Description) {
    d.schema::<keylime_api::ErrorDocument>();
    let document = |about: &str| -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Object)
            .description(Some(about))
            .build()
            .into()
    };
    for prefix in ["v3", "v3.0"] {
        let (create_id, prove_id) = if prefix == "v3" {
            ("createSession", "proveSession")
        } else {
            ("createSessionV30", "proveSessionV30")
        };
        d.add(
            Operation::new(
                HttpMethod::Post,
                &format!("/{prefix}/sessions"),
                create_id,
                "A proof-of-possession challenge for a push agent",
            )
            .body(document(
                "JSON:API document: data.type `session`, attributes `agent_id` and \
                 `authentication_supported` including `tpm_pop`",
            ))
            .reply(
                200,
                "The session: id, challenge and its expiry",
                Reply::Document(Box::new(document(
                    "data.id and attributes `authentication_requested[].chosen_parameters.challenge`",
                ))),
            )
            .reply(400, "Malformed document or no tpm_pop", Reply::Errors)
            .reply(413, "Body too large", Reply::Error)
            .reply(429, "Rate limited per address or agent", Reply::ErrorsRetryLater),
        );
        d.add(
            Operation::new(
                HttpMethod::Patch,
                &format!("/{prefix}/sessions/{{session_id}}"),
                prove_id,
                "The TPM2_Certify proof; issues a bearer token",
            )
            .body(document(
                "JSON:API document: attributes `agent_id` and `authentication_provided` with \
                 `data.message` (TPMS_ATTEST) and `data.signature` (TPMT_SIGNATURE), base64",
            ))
            .reply(
                200,
                "evaluation `pass` with `token`, or `fail` (challenge expired, agent not enrolled)",
                Reply::Document(Box::new(document("the session with `evaluation`"))),
            )
            .reply(
                400,
                "Malformed document or agent id mismatch",
                Reply::Errors,
            )
            .reply(
                401,
                "The proof is invalid",
                Reply::Document(Box::new(document("evaluation `fail`, reason in meta"))),
            )
            .reply(404, "Unknown or already answered session", Reply::Errors)
            .reply(413, "Body too large", Reply::Error)
            .stored(),
        );
    }
}

/// The description as pretty JSON.
pub fn description_json() -> String {
    keylime_api::openapi::to_json(&description())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{PolicyOp, Route, resolve};
    use keylime_api::openapi::{Served, check_route_coverage};
    use keylime_store::PolicyKind;

    /// The operations that may describe `route` (one per path that reaches it).
    /// Exhaustive: a new route does not compile until it is described.
    fn described_by(route: &Route) -> Vec<&'static str> {
        let policy = |kind: &PolicyKind| match kind {
            PolicyKind::Runtime => PolicyRoutes::RUNTIME.ids,
            PolicyKind::MeasuredBoot => PolicyRoutes::MEASURED_BOOT.ids,
        };
        match route {
            Route::Version => vec!["getVersion", "getVersions", "getVersionAtPrefix"],
            Route::Root => vec!["getRoot"],
            Route::List { .. } => vec!["listAgents"],
            Route::Add(_) => vec!["addAgent"],
            Route::Status(_) => vec!["getAgent"],
            Route::Delete(_) => vec!["deleteAgent"],
            Route::Reactivate(_) => vec!["reactivateAgent"],
            Route::Stop(_) => vec!["stopAgent"],
            Route::VerifyIdentity => vec!["verifyIdentity"],
            Route::VerifyEvidence => vec!["verifyEvidence"],
            Route::CreateSession => vec!["createSession", "createSessionV30"],
            Route::ProveSession(_) => vec!["proveSession", "proveSessionV30"],
            Route::ListPolicies(kind) => vec![policy(kind)[0]],
            Route::Policy { kind, op, .. } => {
                let i = match op {
                    PolicyOp::Show => 1,
                    PolicyOp::Create => 2,
                    PolicyOp::Update => 3,
                    PolicyOp::Delete => 4,
                };
                vec![policy(kind)[i]]
            }
        }
    }

    #[test]
    fn description_and_route_table_agree() {
        let words = [
            "agents",
            "A",
            "verify",
            "identity",
            "evidence",
            "allowlists",
            "mbpolicies",
            "reactivate",
            "stop",
            "activate",
            "sessions",
        ];
        let first = ["version", "versions", "v3", "v3.0", "v2.7", "agents"];
        let served = check_route_coverage(&description(), &first, &words, |method, path| {
            let route = resolve(&method.parse().ok()?, path, None).ok()?;
            Some(Served {
                ids: described_by(&route),
                admin: route.admin_action().is_some(),
            })
        });
        assert!(served > 1000, "only {served} requests were served");
    }

    #[test]
    fn committed_copy_is_current() {
        keylime_testkit::check_openapi_copy("verifier.json", &description_json());
    }
}
