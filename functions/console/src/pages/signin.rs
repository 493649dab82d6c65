//! Signing in with a Portico password (the API's password grant) and signing out.
//!
//! | route | what |
//! |-------|------|
//! | `GET /console/signin?then=` | the form (and a link to the OIDC provider when one is configured) |
//! | `POST /console/signin` | the password grant; the token goes into the session cookie |
//! | `POST /console/signout` | clears the cookie |

use http::{Method, StatusCode};
use maud::html;
use portico_core::web::{ApiRequest, ApiResponse};

use crate::backend::ApiError;
use crate::guard::{self, BASE, PRE_COOKIE, SESSION_COOKIE};
use crate::layout::{FieldAttrs, alert, html_response, page, text_field};
use crate::{Console, Form, insert_cookie};

/// How long a sign-in form stays usable.
const FORM_TTL_SECONDS: i64 = 1800;

pub async fn route(console: &Console, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let then = guard::return_path(req);
    match *req.method() {
        Method::GET => Ok(form(console, &then, "", None, StatusCode::OK)),
        Method::POST => sign_in(console, req).await,
        _ => Err(super::not_found()),
    }
}

/// The sign-in form, bound to this browser by a one-off cookie (no login CSRF).
fn form(console: &Console, then: &str, username: &str, error: Option<&ApiError>, status: StatusCode) -> ApiResponse {
    let pre = guard::random_token();
    let oidc = console.services.config.console_oidc_client_id.is_some();
    let body = html! {
        (alert(error))
        form.card.narrow method="post" action={ (BASE) "/signin" } {
            input type="hidden" name="_pre" value=(pre);
            input type="hidden" name="then" value=(then);
            (text_field("Username", "username", username, None,
                FieldAttrs { autocomplete: Some("username"), ..FieldAttrs::required() }))
            (text_field("Password", "password", "", None,
                FieldAttrs { kind: "password", autocomplete: Some("current-password"), ..FieldAttrs::required() }))
            button type="submit" { "Sign in" }
        }
        @if oidc {
            p { a.button href={ (BASE) "/oidc/start" (guard::query(&[("then", then)])) } { "Sign in with your organization" } }
        }
    };
    let mut r = html_response(status, page("Sign in", None, body));
    insert_cookie(&mut r, &guard::set_cookie(PRE_COOKIE, &pre, FORM_TTL_SECONDS));
    r
}

async fn sign_in(console: &Console, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let fields = Form(guard::form(req));
    let then = guard::safe_return(Some(fields.get("then")));
    let bound = guard::cookie(req, PRE_COOKIE).is_some_and(|c| guard::same_secret(fields.get("_pre"), c));
    if !bound || !guard::same_origin(req) {
        let stale = ApiError {
            status: StatusCode::FORBIDDEN,
            code: "csrf".into(),
            message: "This sign-in form is not from this console or has expired; please try again.".into(),
            field: None,
        };
        return Ok(form(console, &then, fields.get("username"), Some(&stale), StatusCode::FORBIDDEN));
    }
    let grant =
        [("grant_type", "password"), ("username", fields.get("username")), ("password", fields.get("password"))];
    match console.backend.call(Method::POST, "/auth/token", None).form(&grant).send().await {
        Ok(answer) => {
            let token = answer.body["access_token"].as_str().unwrap_or_default();
            let lifetime = answer.body["expires_in"].as_i64().unwrap_or(3600);
            let mut r = guard::redirect(&then);
            insert_cookie(&mut r, &guard::set_cookie(SESSION_COOKIE, token, lifetime));
            insert_cookie(&mut r, &guard::clear_cookie(PRE_COOKIE));
            Ok(r)
        }
        Err(e) => {
            let status = if e.status.is_server_error() { e.status } else { StatusCode::UNAUTHORIZED };
            Ok(form(console, &then, fields.get("username"), Some(&e), status))
        }
    }
}

/// Signs out: the cookie is cleared; the token itself lives on until it expires (Portico's
/// tokens are stateless), which is why the cookie is `HttpOnly` and scoped to the console.
pub fn sign_out() -> ApiResponse {
    let mut r = guard::redirect(&format!("{BASE}/signin"));
    insert_cookie(&mut r, &guard::clear_cookie(SESSION_COOKIE));
    r
}
