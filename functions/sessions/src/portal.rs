//! The streaming portal's own routes, drop-in (the Omniverse portal sample's backend,
//! `routers/sessions.py`): its web client starts a session with `POST`, checks it with `HEAD`
//! and stops it with `DELETE` on `/sessions/{function_id}/{function_version_id}/sign_in`, and
//! opens its signaling WebSocket on that same path (served by `portico_streaming::direct`,
//! not by this function: see its docs). The caller is its bearer or the portal's `id_token`
//! cookie; the session is named by the cookie `nvcf-request-id`. Errors are FastAPI's
//! `{"detail"}`, as the portal expects. Portico's permissions (`session.start` on the app's
//! group), quotas and lifecycle apply as on `POST /sessions`.

use axum::extract::State;
use http::{HeaderValue, StatusCode, header};
use portico_core::Error;
use portico_core::apps::{Catalog, is_platform_id};
use portico_core::authz::Action;
use portico_core::web::{self, ApiRequest, ApiResponse, DetailError, PathParams, Request, as_detail};
use portico_streaming::nvcf::REQUEST_ID_COOKIE;
use portico_streaming::{Session, SessionState, SessionView, direct_session_id};

use crate::{Api, SessionsApi};

/// The portal's ID token cookie.
const ID_TOKEN_COOKIE: &str = "id_token";

/// The session's cookie, which the start set.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Cookie)]
#[allow(dead_code)] // Read from the headers; declared for the document.
struct RequestIdCookie {
    /// NVCF's session (the start's `nvcf-request-id`).
    #[serde(rename = "nvcf-request-id")]
    // RFC 6265's cookie-octet: NVCF's id is opaque.
    #[param(rename = "nvcf-request-id", pattern = "^[\\x21\\x23-\\x2B\\x2D-\\x3A\\x3C-\\x5B\\x5D-\\x7E]{1,512}$")]
    nvcf_request_id: String,
}

/// Start a session (the streaming portal's route)
///
/// Needs `session.start` on the group of an app streaming that function version (an `ACTIVE`
/// one); over the per-user limit of instances, 429 without calling NVCF. Answers the session,
/// the header `nvcf-request-id` and two cookies `nvcf-request-id` (this path, and
/// `/stream/{function_id}/{function_version_id}`).
#[utoipa::path(post, path = "/sessions/{function_id}/{function_version_id}/sign_in", tag = "sessions",
    params(("function_id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,128}$"),
        ("function_version_id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,128}$")),
    security(("portalIdToken" = [])),
    responses(
        (status = 200, description = "Started", body = SessionView,
            headers(("nvcf-request-id" = String, description = "NVCF's session"),
                    ("Set-Cookie" = String, description = "`nvcf-request-id`, twice (two paths)"))),
        (status = 401, description = "Refused", body = DetailError),
        (status = 403, description = "Refused", body = DetailError),
        (status = 404, description = "No app streams this function version", body = DetailError),
        (status = 408, description = "NVCF did not answer in time", body = DetailError),
        (status = 409, description = "The app cannot be streamed now", body = DetailError),
        (status = 429, description = "Maximum number of instances reached", body = DetailError),
        (status = 502, description = "Refused", body = DetailError),
        (status = 503, description = "Refused", body = DetailError),
    ),
)]
pub(crate) async fn sign_in(
    State(api): Api,
    PathParams((function_id, version_id)): PathParams<(String, String)>,
    Request(req): Request,
) -> ApiResponse {
    api.portal_sign_in(&req, &function_id, &version_id).await.unwrap_or_else(|e| refusal(&e))
}

/// Check a session (the streaming portal's route)
///
/// 200 while the session the cookie `nvcf-request-id` names is the caller's and live, else 404
/// (and the cookies cleared).
#[utoipa::path(head, path = "/sessions/{function_id}/{function_version_id}/sign_in", tag = "sessions",
    params(("function_id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,128}$"),
        ("function_version_id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,128}$"), RequestIdCookie),
    security(("portalIdToken" = [])),
    responses(
        (status = 200, description = "Live"),
        (status = 400, description = "No `nvcf-request-id` cookie"),
        (status = 401, description = "Refused"),
        (status = 403, description = "Refused"),
        (status = 404, description = "No such live session of the caller's"),
        (status = 503, description = "Refused"),
    ),
)]
pub(crate) async fn check(
    State(api): Api,
    PathParams((function_id, version_id)): PathParams<(String, String)>,
    Request(req): Request,
) -> ApiResponse {
    let answer = async {
        let who = api.services.principal_by_cookie(&req, ID_TOKEN_COOKIE).await?;
        api.own_session(&req, &who.username, &function_id, &version_id).await
    };
    match answer.await {
        Ok(_) => web::empty(StatusCode::OK),
        Err(e) => {
            let mut r = web::empty(e.status());
            if e.status() == StatusCode::NOT_FOUND || e.status() == StatusCode::BAD_REQUEST {
                clear_cookies(&mut r, req.uri().path(), &function_id, &version_id);
            }
            r
        }
    }
}

/// Stop a session (the streaming portal's route)
///
/// Ends the session the cookie `nvcf-request-id` names, at NVCF too; its socket is closed with
/// 3010. The answer clears both cookies.
#[utoipa::path(delete, path = "/sessions/{function_id}/{function_version_id}/sign_in", tag = "sessions",
    params(("function_id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,128}$"),
        ("function_version_id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,128}$"), RequestIdCookie),
    security(("portalIdToken" = [])),
    responses(
        (status = 200, description = "Stopped"),
        (status = 400, description = "No `nvcf-request-id` cookie", body = DetailError),
        (status = 401, description = "Refused", body = DetailError),
        (status = 403, description = "Refused", body = DetailError),
        (status = 404, description = "Session not found", body = DetailError),
        (status = 503, description = "Refused", body = DetailError),
    ),
)]
pub(crate) async fn sign_out(
    State(api): Api,
    PathParams((function_id, version_id)): PathParams<(String, String)>,
    Request(req): Request,
) -> ApiResponse {
    let answer = async {
        let who = api.services.principal_by_cookie(&req, ID_TOKEN_COOKIE).await?;
        let session = api.own_session(&req, &who.username, &function_id, &version_id).await?;
        api.sessions().end(&session.id, "stopped_by_owner").await?;
        Ok::<_, Error>(web::json(StatusCode::OK, &serde_json::json!({})))
    };
    let mut r = answer.await.unwrap_or_else(|e| refusal(&e));
    // Stopped, or no session to stop: the cookies go (not when it may still be live).
    if matches!(r.status(), StatusCode::OK | StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND) {
        clear_cookies(&mut r, req.uri().path(), &function_id, &version_id);
    }
    r
}

impl SessionsApi {
    async fn portal_sign_in(
        &self,
        req: &ApiRequest,
        function_id: &str,
        version_id: &str,
    ) -> Result<ApiResponse, Error> {
        let who = self.services.principal_by_cookie(req, ID_TOKEN_COOKIE).await?;
        who.require_somewhere(Action::SessionStart)?;
        let nvcf = self
            .streaming
            .nvcf
            .as_ref()
            .ok_or_else(|| Error::Unavailable("no NVCF signaling endpoint is configured".into()))?;
        let known = is_platform_id(function_id) && is_platform_id(version_id);
        let apps = match known {
            true => Catalog::new(self.services.table.as_ref()).by_function(function_id, version_id).await?,
            false => Vec::new(),
        };
        if apps.is_empty() {
            return Err(Error::NotFound("Application not found.".into()));
        }
        let app = apps
            .into_iter()
            .find(|app| who.may(Action::SessionStart, &app.group))
            .ok_or_else(|| Error::Forbidden("not allowed to stream this app".into()))?;
        let status = self.streaming.statuses.app_status(function_id, version_id).await;
        if status != portico_streaming::functions::AppStatus::Active {
            return Err(Error::AppUnavailable(format!("app '{}' cannot be streamed now (status {status})", app.slug)));
        }
        let query = req.uri().query().unwrap_or("");
        let session = self.sessions().start_direct(&who.username, &app, &who.limits, nvcf, query).await?;
        let request_id = session.direct.as_ref().map(|d| d.request_id.clone()).unwrap_or_default();
        let mut r = web::json(StatusCode::OK, &session.view());
        let headers = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            headers.insert(REQUEST_ID_COOKIE, v);
        }
        let max_age = self.services.config.session_ttl as i64;
        for path in cookie_paths(req.uri().path(), function_id, version_id) {
            if let Ok(v) = HeaderValue::from_str(&request_id_cookie(&request_id, &path, max_age)) {
                headers.append(header::SET_COOKIE, v);
            }
        }
        Ok(r)
    }

    /// The live session the request's `nvcf-request-id` cookie names, if `owner`'s and of that
    /// function version: 400 without the cookie, 404 otherwise. 1 read.
    async fn own_session(
        &self,
        req: &ApiRequest,
        owner: &str,
        function_id: &str,
        version_id: &str,
    ) -> Result<Session, Error> {
        let request_id = web::cookie(req.headers(), REQUEST_ID_COOKIE).ok_or_else(|| {
            Error::bad_request(portico_core::codes::INVALID_BODY, "nvcf-request-id must be specified in cookies.")
        })?;
        let not_found = || Error::NotFound("Session not found.".into());
        if !is_cookie_value(request_id) {
            return Err(not_found());
        }
        let (session, _) = self.sessions().get(&direct_session_id(request_id)).await.map_err(|e| match e {
            Error::NotFound(_) => not_found(),
            other => other,
        })?;
        let same = session.direct.as_ref().is_some_and(|d| {
            d.request_id == request_id && d.function_id == function_id && d.function_version_id == version_id
        });
        if !same || session.owner != owner || session.state == SessionState::Stopped {
            return Err(not_found());
        }
        Ok(session)
    }
}

/// The portal's refusals: FastAPI's `{"detail"}`; its own statuses where it has its own (429
/// over the limit of instances, 408 when NVCF does not answer).
fn refusal(e: &Error) -> ApiResponse {
    match e {
        Error::QuotaExceeded(message) => web::detail(StatusCode::TOO_MANY_REQUESTS, message),
        Error::Upstream { status, .. } if *status == StatusCode::GATEWAY_TIMEOUT => {
            web::log_server_side(e);
            web::detail(
                StatusCode::REQUEST_TIMEOUT,
                "Failed to start a streaming session with a timeout -- try again later.",
            )
        }
        other => as_detail(other),
    }
}

/// Whether `value` may be a cookie's value (RFC 6265's cookie-octets, at most 512): NVCF's
/// session id is opaque, so nothing narrower is assumed.
fn is_cookie_value(value: &str) -> bool {
    (1..=512).contains(&value.len())
        && value.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E))
}

/// Where the portal's web client sends the session's cookie: this route's path, and its
/// stream page's.
fn cookie_paths(path: &str, function_id: &str, version_id: &str) -> [String; 2] {
    [path.to_owned(), format!("/stream/{function_id}/{version_id}")]
}

fn request_id_cookie(value: &str, path: &str, max_age: i64) -> String {
    format!("{REQUEST_ID_COOKIE}={value}; Max-Age={max_age}; Path={path}; HttpOnly; Secure; SameSite=Lax")
}

/// Clears both of the session's cookies.
fn clear_cookies(r: &mut ApiResponse, path: &str, function_id: &str, version_id: &str) {
    for path in cookie_paths(path, function_id, version_id) {
        if let Ok(v) = HeaderValue::from_str(&request_id_cookie("", &path, 0)) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}
