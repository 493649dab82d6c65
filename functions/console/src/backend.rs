//! The API, called in process: each console action is one request to the route group that
//! owns it, with the signed-in user's token, so the console authorizes, validates and answers
//! exactly as the API does (and shows the API's own error messages).

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{Method, StatusCode, header};
use portico_core::Services;
use portico_core::web::{ApiRequest, ApiResponse, RequestMeta, RouteGroup, Routes};
use portico_desktops::DesktopClients;
use portico_jobs::JobClients;
use portico_streaming::Streaming;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The domains' clients the console's route groups use.
pub struct Domains {
    pub streaming: Arc<Streaming>,
    pub jobs: Arc<JobClients>,
    pub desktops: Arc<DesktopClients>,
}

/// The route groups the console uses, sharing the console's [`Services`]. Each is built on
/// its first use: a cold start that serves a redirect or a static page builds none.
pub struct Backend {
    services: Arc<Services>,
    streaming: Arc<Streaming>,
    jobs_clients: Arc<JobClients>,
    desktops_clients: Arc<DesktopClients>,
    apps: OnceLock<Routes>,
    auth: OnceLock<Routes>,
    admin: OnceLock<Routes>,
    sessions: OnceLock<Routes>,
    jobs: OnceLock<Routes>,
    desktops: OnceLock<Routes>,
}

/// An answer of the API other than a success: its status and its words.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// The request field the API says this error concerns.
    pub field: Option<String>,
}

impl ApiError {
    /// The request field this error concerns, as the API's error body names it.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The error as the script reads it: `{"code", "message"}` with its status.
    pub fn json_response(&self) -> ApiResponse {
        portico_core::web::json(self.status, &serde_json::json!({"code": self.code, "message": self.message}))
    }

    fn from_body(status: StatusCode, body: &str) -> ApiError {
        let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        ApiError {
            status,
            code: text("code").or_else(|| text("error")).unwrap_or_else(|| "error".into()),
            message: text("message")
                .or_else(|| text("error_description"))
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").into()),
            field: text("field"),
        }
    }
}

/// A successful answer: status, headers and the body as JSON (`Null` when empty or text).
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The body as `T`; a shape the console does not expect is the console's fault.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_value(self.body.clone()).map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal".into(),
            message: format!("the console could not read the API's answer: {e}"),
            field: None,
        })
    }

    /// The `ETag` without its quotes.
    pub fn etag(&self) -> Option<String> {
        let tag = self.headers.get(header::ETAG)?.to_str().ok()?;
        Some(tag.trim_matches('"').to_owned())
    }
}

/// One API call in the making.
pub struct Call<'a> {
    backend: &'a Backend,
    method: Method,
    path: String,
    token: Option<&'a str>,
    body: Option<(Bytes, &'static str)>,
    headers: Vec<(header::HeaderName, String)>,
    meta: RequestMeta,
}

impl Backend {
    pub fn new(services: Arc<Services>, domains: Domains) -> Backend {
        let Domains { streaming, jobs: jobs_clients, desktops: desktops_clients } = domains;
        Backend {
            services,
            streaming,
            jobs_clients,
            desktops_clients,
            apps: OnceLock::new(),
            auth: OnceLock::new(),
            admin: OnceLock::new(),
            sessions: OnceLock::new(),
            jobs: OnceLock::new(),
            desktops: OnceLock::new(),
        }
    }

    /// A request to `path` (with its query), as `token`'s holder.
    pub fn call<'a>(&'a self, method: Method, path: impl Into<String>, token: Option<&'a str>) -> Call<'a> {
        Call {
            backend: self,
            method,
            path: path.into(),
            token,
            body: None,
            headers: Vec::new(),
            meta: RequestMeta::default(),
        }
    }

    fn group_for(&self, path: &str) -> &dyn RouteGroup {
        let first = path.trim_start_matches('/').split(['/', '?']).next().unwrap_or("");
        let services = || Arc::clone(&self.services);
        match first {
            "auth" | "user" => self.auth.get_or_init(|| portico_auth::AuthApi::routes(services())),
            "admin" => self.admin.get_or_init(|| portico_admin::AdminApi::routes(services())),
            "sessions" => self
                .sessions
                .get_or_init(|| portico_sessions::SessionsApi::routes(services(), Arc::clone(&self.streaming))),
            "jobs" | "recipes" => {
                self.jobs.get_or_init(|| portico_jobs_api::JobsApi::routes(services(), Arc::clone(&self.jobs_clients)))
            }
            "desktops" | "environments" | "experiments" => self.desktops.get_or_init(|| {
                portico_desktops_api::DesktopsApi::routes(services(), Arc::clone(&self.desktops_clients))
            }),
            _ => self.apps.get_or_init(|| portico_apps::AppsApi::routes(services(), self.streaming.statuses.clone())),
        }
    }
}

impl<'a> Call<'a> {
    pub fn json(mut self, value: &Value) -> Self {
        self.body = Some((Bytes::from(value.to_string()), "application/json"));
        self
    }

    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        let text = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        self.body = Some((Bytes::from(text), "application/x-www-form-urlencoded"));
        self
    }

    pub fn header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Carries the console request's id, so the log names one request id for both.
    pub fn within(mut self, meta: &RequestMeta) -> Self {
        self.meta = meta.clone();
        self
    }

    /// Sends the request to its route group; 2xx is an [`Answer`], anything else an [`ApiError`].
    pub async fn send(self) -> Result<Answer, ApiError> {
        let mut builder = http::Request::builder().method(self.method).uri(&self.path);
        if let Some(token) = self.token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        let (body, content_type) = self.body.unwrap_or_default();
        if !content_type.is_empty() {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        let mut req: ApiRequest = builder.body(body).map_err(|e| ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request".into(),
            message: format!("the request could not be made: {e}"),
            field: None,
        })?;
        req.extensions_mut().insert(self.meta);
        let group = self.backend.group_for(&self.path);
        let response = match group.route(&req).await {
            Ok(r) => r,
            Err(e) => portico_core::web::error_response(&e),
        };
        let (parts, text) = response.into_parts();
        if !parts.status.is_success() {
            return Err(ApiError::from_body(parts.status, &text));
        }
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status: parts.status, headers: parts.headers, body, text })
    }
}
