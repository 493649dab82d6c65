//! Every HTTP route but the RPC methods, group by group, as the functions' module docs list
//! them. A path's `{name}` segments become path parameters.

use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn, PathsBuilder};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Content, ContentBuilder, Paths, Ref, RefOr, Required, Schema};

use super::{bearer_security, error_response_name};

/// A parameter's schema.
type Param = ObjectBuilder;

/// One operation being described.
struct Op {
    method: HttpMethod,
    /// The method's name, for the operation id.
    verb: &'static str,
    path: String,
    public: bool,
    op: OperationBuilder,
    responses: ResponsesBuilder,
    query: Vec<(&'static str, &'static str, Param)>,
    headers: Vec<(&'static str, &'static str, Param)>,
    /// The required query parameters, by name.
    required: Vec<&'static str>,
}

fn schema(name: &str) -> RefOr<Schema> {
    Ref::from_schema_name(name).into()
}

fn json(name: &str, example: Option<serde_json::Value>) -> Content {
    ContentBuilder::new().schema(Some(schema(name))).example(example).build()
}

fn op(method: HttpMethod, verb: &'static str, path: &str, summary: &str) -> Op {
    Op {
        method,
        verb,
        path: path.into(),
        public: false,
        op: OperationBuilder::new().summary(Some(summary)),
        responses: ResponsesBuilder::new(),
        query: vec![],
        headers: vec![],
        required: vec![],
    }
}

fn string() -> Param {
    ObjectBuilder::new().schema_type(Type::String)
}

/// Path parameters the server checks, by name (others, such as ids, are any string: an unknown
/// one is 404).
fn path_param(path: &str, name: &str) -> Param {
    match name {
        "slug" => string().pattern(Some(SLUG)),
        "user" => string().pattern(Some(USERNAME)),
        "role" => string().pattern(Some(ROLE)),
        "name" if path.starts_with("/recipes/") => string().pattern(Some(K8S_NAME)),
        _ => string(),
    }
}

fn get(path: &str, summary: &str) -> Op {
    op(HttpMethod::Get, "get", path, summary)
}
fn post(path: &str, summary: &str) -> Op {
    op(HttpMethod::Post, "post", path, summary)
}
fn put(path: &str, summary: &str) -> Op {
    op(HttpMethod::Put, "put", path, summary)
}
fn delete(path: &str, summary: &str) -> Op {
    op(HttpMethod::Delete, "delete", path, summary)
}

impl Op {
    fn public(mut self) -> Self {
        self.public = true;
        self
    }

    fn about(mut self, description: &str) -> Self {
        self.op = self.op.description(Some(description));
        self
    }

    /// Query parameters of any string.
    fn query(mut self, params: &[(&'static str, &'static str)]) -> Self {
        self.query.extend(params.iter().map(|(name, about)| (*name, *about, string())));
        self
    }

    fn query_as(mut self, name: &'static str, about: &'static str, schema: Param) -> Self {
        self.query.push((name, about, schema));
        self
    }

    fn paged(self) -> Self {
        let limit = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1));
        // What `Cursor::position` can decode: URL-safe base64 without padding, 2048 at most.
        // Only the server's own cursors are valid: any other is 400 `invalid_cursor`.
        let next = string().min_length(Some(1)).max_length(Some(2048)).pattern(Some("^[A-Za-z0-9_-]+$"));
        self.query_as("limit", "Page size (default `page_size_default`, clamped to `page_size_max`).", limit).query_as(
            "next",
            "The previous page's opaque cursor.",
            next,
        )
    }

    fn header(mut self, name: &'static str, about: &'static str, schema: Param) -> Self {
        self.headers.push((name, about, schema));
        self
    }

    fn body(mut self, name: &str, example: Option<serde_json::Value>) -> Self {
        let body =
            RequestBodyBuilder::new().content("application/json", json(name, example)).required(Some(Required::True));
        self.op = self.op.request_body(Some(body.build()));
        self
    }

    fn form(mut self, name: &str) -> Self {
        let body = RequestBodyBuilder::new()
            .content("application/x-www-form-urlencoded", json(name, None))
            .required(Some(Required::True));
        self.op = self.op.request_body(Some(body.build()));
        self
    }

    fn ok(self, status: u16, about: &str, name: &str) -> Self {
        self.ok_example(status, about, name, None)
    }

    fn ok_example(mut self, status: u16, about: &str, name: &str, example: Option<serde_json::Value>) -> Self {
        let r = ResponseBuilder::new().description(about).content("application/json", json(name, example));
        self.responses = self.responses.response(status.to_string(), r);
        self
    }

    fn text(mut self, status: u16, about: &str, content_type: &str) -> Self {
        let string = ObjectBuilder::new().schema_type(Type::String);
        let r = ResponseBuilder::new()
            .description(about)
            .content(content_type, ContentBuilder::new().schema(Some(string)).build());
        self.responses = self.responses.response(status.to_string(), r);
        self
    }

    fn empty(mut self, status: u16, about: &str) -> Self {
        self.responses = self.responses.response(status.to_string(), ResponseBuilder::new().description(about));
        self
    }

    /// Errors in Portico's shape, one shared response per status.
    fn errors(mut self, statuses: &[u16]) -> Self {
        for status in statuses {
            let r = Ref::new(format!("#/components/responses/{}", error_response_name(*status)));
            self.responses = self.responses.response(status.to_string(), r);
        }
        self
    }

    /// Errors in another body's shape (`OAuthError`, `OgdcError`).
    fn errors_as(mut self, name: &str, statuses: &[u16]) -> Self {
        for status in statuses {
            let mut r = ResponseBuilder::new().description("Refused").content("application/json", json(name, None));
            if *status == 503 {
                r = r.header("Retry-After", super::retry_after_header());
            }
            self.responses = self.responses.response(status.to_string(), r);
        }
        self
    }

    fn build(self, tag: &str) -> Operation {
        let id = super::operation_id(self.verb, &self.path);
        let mut op = self.op.tag(tag).operation_id(Some(id)).responses(self.responses.build());
        for name in self.path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
            let p = ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(path_param(&self.path, name)));
            op = op.parameter(p);
        }
        for (name, about, schema) in self.query {
            let required = if self.required.contains(&name) { Required::True } else { Required::False };
            let p = ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .description(Some(about))
                .required(required)
                .schema(Some(schema));
            op = op.parameter(p);
        }
        for (name, about, schema) in self.headers {
            let p = ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .description(Some(about))
                .schema(Some(schema));
            op = op.parameter(p);
        }
        let mut op = op.build();
        op.security = Some(if self.public { vec![] } else { bearer_security() });
        op
    }
}

// What the server checks of names (`apps::validate_slug`, `directory::validate_username`,
// `directory::validate_role_name`, the templates' Kubernetes-style names).
const SLUG: &str = "^[a-z0-9][a-z0-9-]{0,62}$";
const USERNAME: &str = "^[A-Za-z0-9._@-]{1,64}$";
const ROLE: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";
const K8S_NAME: &str = "^[a-z][a-z0-9-]{0,62}$";

fn sessions() -> Vec<Op> {
    vec![
        post("/sessions", "Start a streaming session")
            .about("Needs `session.start` on the app's group and an `ACTIVE` app; reserves one `sessions` unit of quota.")
            .body("StartSession", Some(serde_json::json!({"app": "usd-validate"})))
            .ok(201, "The client's ticket, with `Location`", "SessionTicket")
            .errors(&[400, 401, 403, 409, 413, 415, 502, 503, 504]),
        get("/sessions", "List sessions")
            .about("The caller's own; with `all=true` (administrators) every session, filtered by `state`, `app`, `owner`.")
            .paged()
            .query(&[("all", "`true`: every session (administrators)."), ("state", "With `all`."), ("app", "With `all`."), ("owner", "With `all`.")])
            .ok(200, "A page of sessions", "SessionPage")
            .errors(&[400, 401, 403, 503]),
        get("/sessions/{id}", "Get a session").ok(200, "The session", "SessionView").errors(&[401, 404, 503]),
        delete("/sessions/{id}", "End a session").about("Both sides are told and closed; the quota is released.").empty(204, "Ended").errors(&[401, 404, 503]),
        post("/sessions/{id}/tickets", "A fresh client ticket").about("The owner's, to come back to an `idle` session.").ok(201, "The ticket", "SessionTicket").errors(&[401, 403, 404, 409, 503]),
    ]
}

fn jobs() -> Vec<Op> {
    const JOB: &[u16] = &[401, 404, 502, 503, 504];
    vec![
        post("/jobs", "Submit a job")
            .about("Needs `job.submit` on the group. The same `Idempotency-Key` and body answer the same job (200).")
            .header(
                "Idempotency-Key",
                "Makes a retry safe; kept `idempotency_ttl` seconds.",
                string().pattern(Some("^[!-~]{1,255}$")),
            )
            .body("SubmitJob", None)
            .ok(201, "The job, `Pending`", "JobView")
            .ok(200, "The job an earlier submission with this key made", "JobView")
            .errors(&[400, 401, 403, 409, 413, 415, 422, 502, 503, 504]),
        get("/jobs", "List jobs")
            .about(
                "The caller's own; with `all=true` (administrators) every job, filtered by `phase`, `recipe`, `owner`.",
            )
            .paged()
            .query(&[
                ("all", "`true`: every job (administrators)."),
                ("phase", "With `all`."),
                ("recipe", "With `all`."),
                ("owner", "With `all`."),
            ])
            .ok(200, "A page of jobs", "JobPage")
            .errors(&[400, 401, 403, 503]),
        get("/jobs/{id}", "Get a job")
            .about("Its phase refreshed from Argo.")
            .ok(200, "The job", "JobView")
            .errors(JOB),
        delete("/jobs/{id}", "Cancel a job")
            .about("Stopped in Argo, quota released; a finished job is 409.")
            .ok(200, "The job", "JobView")
            .errors(&[401, 404, 409, 502, 503, 504]),
        get("/jobs/{id}/logs", "A job's logs")
            .text(200, "The newest `job_log_max_bytes` of the workflow's logs", "text/plain")
            .errors(JOB),
        get("/jobs/{id}/output", "Where a job's output is")
            .ok(200, "A `pvc` location or a presigned download", "JobOutput")
            .errors(&[401, 404, 409, 502, 503, 504]),
        get("/recipes", "List registered templates")
            .paged()
            .ok(200, "A page of templates", "TemplatePage")
            .errors(&[400, 401, 503]),
        get("/recipes/{name}", "Get a registered template")
            .ok(200, "The template and its parameters", "RegisteredTemplate")
            .errors(&[401, 404, 503]),
        put("/recipes/{name}", "Register or replace a template")
            .about("Administrators only.")
            .body("TemplateBody", None)
            .ok(200, "The template", "RegisteredTemplate")
            .errors(&[400, 401, 403, 413, 415, 503]),
        delete("/recipes/{name}", "Remove a template")
            .about("Administrators only.")
            .empty(204, "Removed")
            .errors(&[401, 403, 404, 503]),
    ]
}

fn ogdc() -> Vec<Op> {
    vec![
        post("/ogdc/token", "Sign in (OGDC)")
            .public()
            .form("OgdcLogin")
            .ok(200, "A token", "OgdcToken")
            .errors_as("OgdcError", &[400, 401, 503]),
        post("/ogdc/submit", "Submit a recipe (OGDC)")
            .about("Needs `job.submit` on `job_default_group`.")
            .body("OgdcSubmit", None)
            .ok(200, "Submitted", "OgdcSubmitted")
            .errors_as("OgdcError", &[400, 401, 403, 409, 413, 415, 502, 503, 504]),
        get("/ogdc/status/{name}", "A workflow's status (OGDC)")
            .ok(200, "The status", "OgdcStatus")
            .errors_as("OgdcError", &[401, 404, 503]),
        post("/ogdc/create_user", "Create a user (OGDC)")
            .about("Administrators; the user gets `ogdc_user_role`.")
            .form("OgdcNewUser")
            .ok(200, "Created", "OgdcMessage")
            .errors_as("OgdcError", &[400, 401, 409, 503]),
        get("/ogdc/output/{name}", "A workflow's output (OGDC)")
            .ok(200, "A presigned download", "OgdcOutput")
            .errors_as("OgdcError", &[401, 404, 409, 503]),
        get("/ogdc/user", "The caller (OGDC)").ok(200, "The caller", "OgdcUser").errors_as("OgdcError", &[401]),
        get("/ogdc/version", "The OGDC version this API is").public().ok(200, "The version", "OgdcVersion"),
    ]
}

fn rpc() -> Vec<Op> {
    vec![
        get("/rpc/services", "List the RPC methods")
            .ok(200, "Every exposed service and method", "RpcServices")
            .errors(&[401]),
    ]
}

/// Every route of every group but the RPC methods.
pub fn paths() -> Paths {
    let groups: [(&str, Vec<Op>); 4] = [("sessions", sessions()), ("jobs", jobs()), ("ogdc", ogdc()), ("rpc", rpc())];
    let mut paths = PathsBuilder::new().build();
    for (tag, ops) in groups {
        for op in ops {
            let (path, method) = (op.path.clone(), op.method.clone());
            paths.add_path_operation(path, vec![method], op.build(tag));
        }
    }
    paths
}
