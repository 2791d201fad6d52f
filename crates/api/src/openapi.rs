//! Building blocks of the registrar's and the verifier's OpenAPI 3.1 descriptions: each
//! service lists its operations (in its own `openapi` module) with the wire types of this
//! crate, whose schemas `utoipa` derives from the serde types themselves, and this module
//! turns them into one document with upstream's conventions:
//!
//! - every versioned path starts with an `{api_version}` segment whose values are the
//!   routed 2.x prefixes (`v2`, `v2.0`…`v2.6`); a trailing slash is accepted and not
//!   described;
//! - successes and operation errors use the v2 envelope `{"code","status","results"}`;
//! - admin operations need a trusted client certificate (the `mtls` security scheme) and
//!   answer 403 with the `{"errors":[…]}` document without one;
//! - framework errors (no route, wrong method) have empty `text/html` bodies.
//!
//! [`find_operation`] matches a concrete request line against a finished document, so the
//! services' tests can prove that every route they serve is described.

use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Type};
use utoipa::openapi::security::{SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr,
    Required, ResponseBuilder, Schema,
};

use crate::envelope::{EmptyResults, ErrorDocument};
use crate::version::{CURRENT_VERSION, is_routed_v2_minor};

/// The name of the path parameter that carries the API version prefix.
pub const VERSION_PARAM: &str = "api_version";

/// The path segment of [`VERSION_PARAM`].
const VERSION_TEMPLATE: &str = "{api_version}";

/// The security scheme admin operations require.
const MTLS_SCHEME: &str = "mtls";

/// The routed 2.x prefixes, oldest first: `v2`, `v2.0`…`v2.6`.
pub fn version_prefixes() -> Vec<String> {
    let mut prefixes = vec!["v2".to_owned()];
    prefixes.extend(
        (0..=CURRENT_VERSION.minor)
            .filter(|m| is_routed_v2_minor(*m))
            .map(|m| format!("v2.{m}")),
    );
    prefixes
}

/// One possible answer of an operation.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A v2 envelope whose `results` has this schema (see [`Reply::envelope`]).
    Envelope(Box<RefOr<Schema>>),
    /// An error envelope (`results` is `{}`).
    Error,
    /// An error envelope, or the framework's empty `text/html` body (no route, plain HTTP).
    ErrorOrEmpty,
    /// No body (204, or the framework's empty `text/html` 404).
    Empty,
    /// The `{"errors":[…]}` document of a refused admin request.
    Forbidden,
    /// A redirect with a `Location` header.
    Redirect,
    /// The request or its body took longer than the service allows (plain text, or an
    /// error envelope).
    Timeout,
    /// An error envelope with a `Retry-After` header (seconds).
    RetryLater,
    /// A plain JSON document (not an envelope) with this schema: the v3 session routes.
    Document(Box<RefOr<Schema>>),
    /// The `{"errors":[…]}` document of a refused v3 request.
    Errors,
    /// The `{"errors":[…]}` document with a `Retry-After` header (seconds).
    ErrorsRetryLater,
}

impl Reply {
    /// A v2 envelope whose `results` has `schema`.
    pub fn envelope(schema: RefOr<Schema>) -> Self {
        Self::Envelope(Box::new(schema))
    }
}

/// One described operation.
#[derive(Debug, Clone)]
pub struct Operation {
    method: HttpMethod,
    path: String,
    id: &'static str,
    summary: &'static str,
    admin: bool,
    body: Option<RefOr<Schema>>,
    query: Vec<(&'static str, &'static str, RefOr<Schema>)>,
    replies: Vec<(u16, &'static str, Reply)>,
}

impl Operation {
    /// An operation on `path` (with `{api_version}`, `{agent_id}` or `{name}` segments).
    pub fn new(method: HttpMethod, path: &str, id: &'static str, summary: &'static str) -> Self {
        Self {
            method,
            path: path.to_owned(),
            id,
            summary,
            admin: false,
            body: None,
            query: Vec::new(),
            replies: Vec::new(),
        }
    }

    /// Require a trusted client certificate (403 otherwise).
    pub fn admin(mut self) -> Self {
        self.admin = true;
        self.replies
            .push((403, "No trusted client certificate", Reply::Forbidden));
        self
    }

    /// The operation reads or writes the service's database: 503 with `Retry-After` while
    /// the database cannot be reached.
    pub fn stored(mut self) -> Self {
        self.replies.push((
            503,
            "The database cannot be reached; retry after `Retry-After` seconds",
            Reply::RetryLater,
        ));
        self
    }

    /// A JSON request body with this schema.
    pub fn body(mut self, schema: RefOr<Schema>) -> Self {
        self.body = Some(schema);
        self
    }

    /// An optional query parameter.
    pub fn query(mut self, name: &'static str, about: &'static str, schema: RefOr<Schema>) -> Self {
        self.query.push((name, about, schema));
        self
    }

    /// A possible answer.
    pub fn reply(mut self, status: u16, about: &'static str, reply: Reply) -> Self {
        self.replies.push((status, about, reply));
        self
    }
}

/// A description being assembled: operations and the schemas they name.
#[derive(Debug)]
pub struct Description {
    title: &'static str,
    about: &'static str,
    paths: Paths,
    schemas: Vec<(String, RefOr<Schema>)>,
}

impl Description {
    /// An empty description of the service `title`.
    pub fn new(title: &'static str, about: &'static str) -> Self {
        let mut d = Self {
            title,
            about,
            paths: Paths::new(),
            schemas: Vec::new(),
        };
        d.schema::<ErrorDocument>();
        d.schema::<EmptyResults>();
        d
    }

    /// Register `T`'s schema (and those it names); returns a reference to it.
    pub fn schema<T: ToSchema>(&mut self) -> RefOr<Schema> {
        let name = T::name().into_owned();
        if !self.schemas.iter().any(|(n, _)| *n == name) {
            let mut nested = Vec::new();
            T::schemas(&mut nested);
            for (n, s) in nested {
                if !self.schemas.iter().any(|(k, _)| *k == n) {
                    self.schemas.push((n, s));
                }
            }
            self.schemas.push((name.clone(), T::schema()));
        }
        Ref::from_schema_name(name).into()
    }

    /// Add an operation.
    pub fn add(&mut self, op: Operation) {
        let mut builder = OperationBuilder::new()
            .operation_id(Some(op.id))
            .summary(Some(op.summary));
        for segment in op.path.split('/') {
            let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
                continue;
            };
            builder = builder.parameter(path_parameter(name));
        }
        for (name, about, schema) in op.query {
            builder = builder.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(about))
                    .schema(Some(schema)),
            );
        }
        if let Some(schema) = op.body {
            builder = builder.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(schema)).build(),
                    )
                    .build(),
            ));
        }
        if op.admin {
            builder = builder.security(SecurityRequirement::new(MTLS_SCHEME, Vec::<String>::new()));
        }
        let mut replies = op.replies;
        if op.path.contains(VERSION_TEMPLATE) {
            // An unknown prefix is the framework's empty 404.
            match replies.iter_mut().find(|(status, _, _)| *status == 404) {
                Some(reply) => reply.2 = Reply::ErrorOrEmpty,
                None => replies.push((404, "Unknown API version prefix", Reply::Empty)),
            }
        }
        replies.push((408, "The request was not received in time", Reply::Timeout));
        replies.sort_by_key(|(status, _, _)| *status);
        for (status, about, reply) in replies {
            builder = builder.response(status.to_string(), response(about, reply));
        }
        self.paths
            .add_path_operation(&op.path, vec![op.method], builder.build());
    }

    /// The finished OpenAPI document.
    pub fn finish(self) -> OpenApi {
        let mut components = ComponentsBuilder::new().security_scheme(
            MTLS_SCHEME,
            SecurityScheme::MutualTls {
                description: Some(
                    "A client certificate issued by the service's trusted client CA".into(),
                ),
                deprecated: None,
                extensions: None,
            },
        );
        for (name, schema) in self.schemas {
            components = components.schema(name, schema);
        }
        OpenApiBuilder::new()
            .info(
                InfoBuilder::new()
                    .title(self.title)
                    .version(CURRENT_VERSION.to_string())
                    .description(Some(self.about))
                    .build(),
            )
            .paths(self.paths)
            .components(Some(components.build()))
            .build()
    }
}

/// Pretty JSON of a finished description, newline-terminated.
pub fn to_json(doc: &OpenApi) -> String {
    let mut text = serde_json::to_string_pretty(doc).unwrap_or_else(|e| {
        unreachable!("an OpenAPI document always serialises: {e}");
    });
    text.push('\n');
    text
}

fn path_parameter(name: &str) -> ParameterBuilder {
    let schema = if name == VERSION_PARAM {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(version_prefixes()))
            .build()
    } else {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .build()
    };
    let about = match name {
        VERSION_PARAM => "API version prefix",
        "agent_id" => "The agent's id",
        "name" => "The policy's name",
        _ => "Path segment",
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(about))
        .schema(Some(schema))
}

fn envelope_schema(results: RefOr<Schema>) -> Schema {
    ObjectBuilder::new()
        .property("code", ObjectBuilder::new().schema_type(Type::Integer))
        .required("code")
        .property("status", ObjectBuilder::new().schema_type(Type::String))
        .required("status")
        .property("results", results)
        .required("results")
        .into()
}

fn json(schema: impl Into<RefOr<Schema>>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

fn empty_html() -> utoipa::openapi::Content {
    json(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(0)),
    )
}

fn response(about: &str, reply: Reply) -> ResponseBuilder {
    let r = ResponseBuilder::new().description(about);
    let error = || envelope_schema(Ref::from_schema_name(EmptyResults::name()).into());
    match reply {
        Reply::Envelope(results) => r.content("application/json", json(envelope_schema(*results))),
        Reply::Error => r.content("application/json", json(error())),
        Reply::ErrorOrEmpty => r
            .content("application/json", json(error()))
            .content("text/html", empty_html()),
        Reply::Empty => r.content("text/html", empty_html()),
        Reply::Forbidden => r.content(
            "application/json",
            json(Ref::from_schema_name(ErrorDocument::name())),
        ),
        Reply::Redirect => r.header(
            "location",
            utoipa::openapi::header::HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        ),
        Reply::Timeout => r.content("application/json", json(error())).content(
            "text/plain",
            json(ObjectBuilder::new().schema_type(Type::String)),
        ),
        Reply::RetryLater => r
            .content("application/json", json(error()))
            .header("retry-after", retry_after_header()),
        Reply::Document(schema) => r.content("application/json", json(*schema)),
        Reply::Errors => r.content(
            "application/json",
            json(Ref::from_schema_name(ErrorDocument::name())),
        ),
        Reply::ErrorsRetryLater => r
            .content(
                "application/json",
                json(Ref::from_schema_name(ErrorDocument::name())),
            )
            .header("retry-after", retry_after_header()),
    }
}

fn retry_after_header() -> utoipa::openapi::header::Header {
    utoipa::openapi::header::HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
        .build()
}

/// A string.
pub fn text() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .build()
        .into()
}

/// An object whose every value is a `value` (by reference to a registered schema).
pub fn map_of(value: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(Ref::from_schema_name(value)))
        .build()
        .into()
}

/// A value matching at least one of `schemas`.
pub fn any_of(schemas: impl IntoIterator<Item = RefOr<Schema>>) -> RefOr<Schema> {
    let mut b = AnyOfBuilder::new();
    for s in schemas {
        b = b.item(s);
    }
    Schema::AnyOf(b.build()).into()
}

/// The operation (as JSON) of `doc` that `method` on the concrete `path` resolves to, if
/// the description has one. A trailing slash is ignored, `{api_version}` matches one of
/// [`version_prefixes`], other parameters match any non-empty segment.
pub fn find_operation<'d>(doc: &'d Value, method: &str, path: &str) -> Option<&'d Value> {
    let path = if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    };
    let concrete: Vec<&str> = path.split('/').collect();
    let prefixes = version_prefixes();
    doc.get("paths")?
        .as_object()?
        .iter()
        .find(|(template, _)| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == concrete.len()
                && parts.iter().zip(&concrete).all(|(t, c)| {
                    if *t == VERSION_TEMPLATE {
                        prefixes.iter().any(|p| p == c)
                    } else if t.starts_with('{') {
                        !c.is_empty()
                    } else {
                        t == c
                    }
                })
        })
        .and_then(|(_, item)| item.get(method.to_ascii_lowercase()))
}

/// Every `(method, path template, operationId)` of a finished description (as JSON).
pub fn operations(doc: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (template, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                out.push((method.to_ascii_uppercase(), template.clone(), id.to_owned()));
            }
        }
    }
    out
}

/// `template` with every parameter filled: one path per version prefix (ids `A`, names `p`).
pub fn concrete_paths(template: &str) -> Vec<String> {
    let fill = |prefix: &str| {
        template
            .split('/')
            .map(|s| match s {
                VERSION_TEMPLATE => prefix,
                s if s.starts_with('{') => {
                    if s == "{name}" {
                        "p"
                    } else {
                        "A"
                    }
                }
                s => s,
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    if template.contains(VERSION_TEMPLATE) {
        version_prefixes().iter().map(|p| fill(p)).collect()
    } else {
        vec![fill("")]
    }
}

/// How a service serves one request line, for [`check_route_coverage`].
#[derive(Debug, Clone)]
pub struct Served {
    /// The operation ids that may describe it (one per path that reaches the route).
    pub ids: Vec<&'static str>,
    /// Whether it needs a trusted client certificate.
    pub admin: bool,
}

/// Prove a description and a service's route table agree, panicking on the first
/// disagreement: every described operation, on every version prefix, is served by a route
/// it may describe (with the same admin rule); and every request line of a walk (the
/// methods GET…OPTIONS on `/`, on each version prefix and each of `first`, and on up to
/// three of `words` after it,
/// with and without a trailing slash) that `serve` accepts finds such an operation.
/// `serve(method, path)` is `None` when the service does not serve the request. Returns how
/// many walked requests were served.
pub fn check_route_coverage(
    doc: &OpenApi,
    first: &[&str],
    words: &[&str],
    serve: impl Fn(&str, &str) -> Option<Served>,
) -> usize {
    let doc = &serde_json::to_value(doc).unwrap_or_default();
    for (method, template, id) in operations(doc) {
        let secured = doc["paths"][&template][method.to_ascii_lowercase()]
            .get("security")
            .is_some();
        for path in concrete_paths(&template) {
            let served = serve(&method, &path)
                .unwrap_or_else(|| panic!("{method} {path} ({id}) is not served"));
            assert!(
                served.ids.contains(&id.as_str()),
                "{method} {path} is served as one of {:?}, described as {id}",
                served.ids
            );
            assert_eq!(served.admin, secured, "{id}: admin rule differs");
        }
    }
    let mut paths = vec!["/".to_owned()];
    let mut level: Vec<String> = version_prefixes()
        .iter()
        .map(String::as_str)
        .chain(first.iter().copied())
        .map(|f| format!("/{f}"))
        .collect();
    for _ in 0..=3 {
        paths.extend(level.iter().cloned());
        level = level
            .iter()
            .flat_map(|p| words.iter().map(move |w| format!("{p}/{w}")))
            .collect();
    }
    let mut served_count = 0;
    for path in &paths {
        for slash in ["", "/"] {
            let path = if path == "/" {
                path.clone()
            } else {
                format!("{path}{slash}")
            };
            for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] {
                let Some(served) = serve(method, &path) else {
                    continue;
                };
                served_count += 1;
                let op = find_operation(doc, method, &path)
                    .unwrap_or_else(|| panic!("{method} {path} is served but not described"));
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(
                    served.ids.contains(&id),
                    "{method} {path} is served as one of {:?}, described as {id}",
                    served.ids
                );
            }
        }
    }
    served_count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VersionInfo;

    fn sample() -> Value {
        serde_json::to_value(sample_doc()).unwrap()
    }

    fn sample_doc() -> OpenApi {
        let mut d = Description::new("t", "a test");
        let version = d.schema::<VersionInfo>();
        d.add(
            Operation::new(
                HttpMethod::Get,
                "/{api_version}/agents/{agent_id}",
                "show",
                "s",
            )
            .admin()
            .reply(200, "ok", Reply::envelope(version.clone())),
        );
        d.add(
            Operation::new(HttpMethod::Get, "/version", "version", "v").reply(
                200,
                "ok",
                Reply::envelope(version),
            ),
        );
        d.finish()
    }

    #[test]
    fn prefixes_are_the_routed_ones() {
        assert_eq!(
            version_prefixes(),
            ["v2", "v2.0", "v2.1", "v2.2", "v2.3", "v2.4", "v2.5", "v2.6"]
        );
    }

    #[test]
    fn document_shape() {
        let doc = sample();
        assert_eq!(doc["openapi"], "3.1.0");
        let op = &doc["paths"]["/{api_version}/agents/{agent_id}"]["get"];
        assert_eq!(op["security"][0]["mtls"], serde_json::json!([]));
        assert_eq!(
            op["responses"]["403"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorDocument"
        );
        let env = &op["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(
            env["required"],
            serde_json::json!(["code", "status", "results"])
        );
        assert!(doc["components"]["schemas"]["VersionInfo"].is_object());
        assert_eq!(
            doc["components"]["securitySchemes"]["mtls"]["type"],
            "mutualTLS"
        );
        let params = op["parameters"].as_array().unwrap();
        assert_eq!(params[0]["name"], "api_version");
        assert_eq!(params[0]["schema"]["enum"].as_array().unwrap().len(), 8);
    }

    #[test]
    fn find_operation_matches_templates() {
        let doc = sample();
        let id = |m, p| {
            find_operation(&doc, m, p).and_then(|o| o["operationId"].as_str().map(str::to_owned))
        };
        assert_eq!(id("GET", "/v2.3/agents/x").as_deref(), Some("show"));
        assert_eq!(id("GET", "/v2/agents/x/").as_deref(), Some("show"));
        assert_eq!(id("GET", "/version").as_deref(), Some("version"));
        assert_eq!(id("GET", "/v2.7/agents/x"), None);
        assert_eq!(id("POST", "/v2.6/agents/x"), None);
        assert_eq!(id("GET", "/v2.6/agents/x/y"), None);
        assert_eq!(operations(&doc).len(), 2, "{:?}", operations(&doc));
        assert_eq!(concrete_paths("/{api_version}/agents/{agent_id}").len(), 8);
        assert_eq!(concrete_paths("/version"), ["/version"]);
    }

    fn sample_service(method: &str, path: &str) -> Option<Served> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            ("GET", ["", "version"]) => Some(Served {
                ids: vec!["version"],
                admin: false,
            }),
            ("GET", ["", p, "agents", _]) if version_prefixes().iter().any(|v| v == p) => {
                Some(Served {
                    ids: vec!["show"],
                    admin: true,
                })
            }
            _ => None,
        }
    }

    #[test]
    fn route_coverage_holds_for_an_agreeing_service() {
        let served = check_route_coverage(
            &sample_doc(),
            &["version"],
            &["agents", "x"],
            sample_service,
        );
        // GET /version and /version/, and on each of the 8 prefixes /agents/agents and
        // /agents/x with and without a slash
        assert_eq!(served, 2 + 8 * 4);
    }

    #[test]
    #[should_panic(expected = "POST /version is served but not described")]
    fn route_coverage_finds_an_undescribed_route() {
        check_route_coverage(&sample_doc(), &["version"], &[], |method, path| {
            sample_service("GET", path).filter(|_| method == "GET" || method == "POST")
        });
    }

    #[test]
    #[should_panic(expected = "admin rule differs")]
    fn route_coverage_finds_a_wrong_admin_rule() {
        check_route_coverage(&sample_doc(), &[], &[], |method, path| {
            sample_service(method, path).map(|s| Served { admin: false, ..s })
        });
    }
}
