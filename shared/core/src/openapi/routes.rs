//! Every HTTP route but the RPC methods, group by group, as the functions' module docs list
//! them. A path's `{name}` segments become path parameters.

use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn, PathsBuilder};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Content, ContentBuilder, Paths, Ref, RefOr, Required, Schema};

use super::schemas::{usd_validate, usd_validate_view};
use super::{bearer_security, docs, error_response_name};
use crate::authz::Action;

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

    fn require(mut self, name: &'static str) -> Self {
        self.required.push(name);
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
        let id: String = format!("{}{}", self.verb, self.path)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>()
            .split('_')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("_");
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

const IF_MATCH: &str = "The `ETag` read before: the write happens only if the app is unchanged (else 412).";

// What the server checks of names (`apps::validate_slug`, `directory::validate_username`,
// `directory::validate_role_name`, the templates' Kubernetes-style names).
const SLUG: &str = "^[a-z0-9][a-z0-9-]{0,62}$";
const USERNAME: &str = "^[A-Za-z0-9._@-]{1,64}$";
const ROLE: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";
const K8S_NAME: &str = "^[a-z][a-z0-9-]{0,62}$";

/// `If-Match` as `web::precondition` reads it: `*`, or a list of quoted entity tags (strong
/// or `W/` weak; empty list elements skipped), in visible ASCII.
fn if_match() -> Param {
    const TAG: &str = "(W/)?\"[ !#-~\t]*\"[ \t]*";
    string().pattern(Some(format!("^(\\*|[ \t,]*{TAG}(,[ \t,]*({TAG})?)*)$")))
}

/// `If-None-Match`: only `*` (create only) on writes.
fn if_none_match() -> Param {
    string().enum_values(Some(["*"]))
}

fn apps() -> Vec<Op> {
    vec![
        get("/apps", "List the apps")
            .paged()
            .query(&[("category", "Exact match."), ("product_area", "Exact match.")])
            .query_as(
                "status",
                "Only apps in this platform status; pages may be short.",
                string().enum_values(Some(["ACTIVE", "INACTIVE", "DEPLOYING", "ERROR", "UNKNOWN"])),
            )
            .ok_example(
                200,
                "A page of apps",
                "AppPage",
                Some(serde_json::json!({"items": [usd_validate_view()], "next": null})),
            )
            .errors(&[400, 401, 503]),
        get("/apps/{slug}", "Get an app")
            .ok_example(200, "The app, with `ETag`", "AppView", Some(usd_validate_view()))
            .errors(&[401, 404, 503]),
        put("/apps/{slug}", "Publish or replace an app")
            .about("Needs `app.publish` on the app's group (both groups when a replace moves it).")
            .header("If-Match", IF_MATCH, if_match())
            .header("If-None-Match", "`*`: create only.", if_none_match())
            .body("AppInput", Some(usd_validate()))
            .ok_example(200, "Replaced, with `ETag`", "AppView", Some(usd_validate_view()))
            .ok_example(201, "Created, with `ETag` and `Location`", "AppView", Some(usd_validate_view()))
            .errors(&[400, 401, 403, 409, 412, 413, 415, 503]),
        delete("/apps/{slug}", "Delete an app")
            .about("Needs `app.delete` on the app's group.")
            .header("If-Match", IF_MATCH, if_match())
            .empty(204, "Deleted")
            .errors(&[400, 401, 403, 404, 412, 503]),
    ]
}

fn meta() -> Vec<Op> {
    vec![
        get("/healthz", "Liveness")
            .about("Up, without touching the store or any token.")
            .public()
            .ok(200, "Up", "Health"),
        get("/openapi.json", "This document").public().text(200, "OpenAPI 3.1, JSON", "application/json"),
        get("/docs", "The API reference page").public().text(200, "HTML (Redoc, served from this API)", "text/html"),
        get(&format!("/docs/{}", docs::ASSET), "The reference page's script")
            .public()
            .text(200, "Redoc's standalone bundle, cached for a year", "text/javascript")
            .errors(&[404]),
    ]
}

fn auth() -> Vec<Op> {
    vec![
        post("/auth/token", "Sign in (OAuth2 password grant)")
            .about("RFC 6749 §4.3; answers with `Cache-Control: no-store`. Repeated failures lock the username for `login_lockout` seconds.")
            .public()
            .form("PasswordForm")
            .ok(200, "A Portico access token", "Token")
            .errors_as("OAuthError", &[400, 401]),
        get("/.well-known/jwks.json", "Portico's public signing keys").public().ok(200, "A JWK set", "Jwks"),
        get("/auth/me", "The caller").ok(200, "Roles, permissions, quota and usage", "Me").errors(&[401, 503]),
        get("/user", "The caller (alias of /auth/me)").ok(200, "Roles, permissions, quota and usage", "Me").errors(&[401, 503]),
    ]
}

fn admin() -> Vec<Op> {
    const E: &[u16] = &[401, 403, 404, 503];
    const W: &[u16] = &[400, 401, 403, 404, 409, 413, 415, 503];
    vec![
        get("/admin/users", "List users").paged().ok(200, "A page of users", "UserPage").errors(&[400, 401, 403, 503]),
        post("/admin/users", "Create a user").body("NewUser", None).ok(201, "The user", "UserView").errors(W),
        get("/admin/users/{user}", "Get a user").ok(200, "The user, quota override and usage", "UserDetail").errors(E),
        delete("/admin/users/{user}", "Delete a user").empty(204, "Deleted").errors(E),
        put("/admin/users/{user}/admin", "Make or unmake an administrator")
            .body("AdminFlag", None)
            .ok(200, "The user", "UserView")
            .errors(W),
        put("/admin/users/{user}/password", "Set a password").body("NewPassword", None).empty(204, "Set").errors(W),
        put("/admin/users/{user}/roles/{role}", "Grant a role").ok(200, "The user", "UserView").errors(E),
        delete("/admin/users/{user}/roles/{role}", "Take a role").ok(200, "The user", "UserView").errors(E),
        get("/admin/users/{user}/quota", "A user's quota override").ok(200, "The override", "QuotaView").errors(E),
        put("/admin/users/{user}/quota", "Set a user's quota override")
            .body("Resources", None)
            .ok(200, "The override", "QuotaView")
            .errors(W),
        delete("/admin/users/{user}/quota", "Clear a user's quota override").empty(204, "Cleared").errors(E),
        get("/admin/roles", "List roles").paged().ok(200, "A page of roles", "RolePage").errors(&[400, 401, 403, 503]),
        post("/admin/roles", "Create a role").body("NewRole", None).ok(201, "The role", "RoleView").errors(W),
        get("/admin/roles/{role}", "Get a role")
            .ok(200, "The role, its permissions and quota default", "RoleDetail")
            .errors(E),
        delete("/admin/roles/{role}", "Delete a role")
            .about("A recreated role is a new role: former holders do not regain it.")
            .empty(204, "Deleted")
            .errors(E),
        get("/admin/roles/{role}/permissions", "A role's permissions")
            .ok(200, "The permissions", "PermissionPage")
            .errors(E),
        post("/admin/roles/{role}/permissions", "Grant a permission")
            .body("Permission", None)
            .ok(201, "The permission", "Permission")
            .errors(W),
        delete("/admin/roles/{role}/permissions", "Revoke a permission")
            .query(&[("group", "The permission's group (default `\"\"`).")])
            .query_as("action", "The permission's action.", string().enum_values(Some(Action::ALL.map(Action::as_str))))
            .require("action")
            .empty(204, "Revoked")
            .errors(&[400, 401, 403, 404, 503]),
        put("/admin/roles/{role}/quota", "Set a role's quota default")
            .body("Resources", None)
            .ok(200, "The default", "QuotaView")
            .errors(W),
        delete("/admin/roles/{role}/quota", "Clear a role's quota default").empty(204, "Cleared").errors(E),
    ]
}

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
    let groups: [(&str, Vec<Op>); 8] = [
        ("apps", apps()),
        ("auth", auth()),
        ("admin", admin()),
        ("sessions", sessions()),
        ("jobs", jobs()),
        ("ogdc", ogdc()),
        ("rpc", rpc()),
        ("meta", meta()),
    ];
    let mut paths = PathsBuilder::new().build();
    for (tag, ops) in groups {
        for op in ops {
            let (path, method) = (op.path.clone(), op.method.clone());
            paths.add_path_operation(path, vec![method], op.build(tag));
        }
    }
    paths
}
