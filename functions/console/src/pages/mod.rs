//! The console's views, one module per area; each area's `route` is its route table.

pub mod admin;
pub mod catalog;
pub mod desktops;
pub mod jobs;
pub mod oidc;
pub mod profile;
pub mod sessions;
pub mod signin;

use http::{Method, StatusCode};
use maud::{Markup, html};
use portico_core::Error;
use portico_core::web::ApiResponse;

use crate::Ctx;
use crate::backend::ApiError;
use crate::guard;
use crate::guard::BASE;
use crate::layout::{html_response, page};

/// A page for an error the console cannot show beside a form: its status and the API's words.
pub fn error_page(e: &ApiError) -> ApiResponse {
    let title = e.status.canonical_reason().unwrap_or("Error");
    let body = html! {
        p.alert role="alert" { (e.message) }
        p { a href={ (BASE) "/apps" } { "Back to the catalog" } }
    };
    html_response(e.status, page(title, None, body))
}

pub fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "not_found".into(),
        message: "There is no such page.".into(),
        field: None,
    }
}

pub fn bad_request(message: &str) -> ApiError {
    ApiError { status: StatusCode::BAD_REQUEST, code: "invalid_request".into(), message: message.into(), field: None }
}

pub fn forbidden(message: &str) -> ApiError {
    ApiError { status: StatusCode::FORBIDDEN, code: "forbidden".into(), message: message.into(), field: None }
}

/// A Portico error, as the API would have answered it (server-side details only logged).
pub fn api_error(e: &Error) -> ApiError {
    portico_core::web::log_server_side(e);
    ApiError { status: e.status(), code: e.code().into(), message: e.to_string(), field: e.field().map(str::to_owned) }
}

/// One page of a listing the API answers as `{"items", "next"}`; a client error (a stale
/// cursor, a bad filter) is kept to show above an empty list, in the API's words.
#[derive(serde::Deserialize)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
    #[serde(skip)]
    pub error: Option<ApiError>,
}

/// `GET path?query` as a [`Listing`] (empty query values left out).
pub async fn listing<T: serde::de::DeserializeOwned>(
    ctx: &Ctx<'_>,
    path: &str,
    query: &[(&str, &str)],
) -> Result<Listing<T>, ApiError> {
    match ctx.api(Method::GET, format!("{path}{}", guard::query(query))).send().await {
        Ok(answer) => answer.json(),
        Err(e) => Ok(Listing { items: Vec::new(), next: None, error: Some(shown(e)?) }),
    }
}

/// A "more" link to the same listing with the API's `next` cursor (and the listing's filters).
pub fn pager(path: &str, filters: &[(&str, &str)], next: Option<&str>, label: &str) -> Markup {
    let Some(next) = next else { return html! {} };
    let mut pairs = filters.to_vec();
    pairs.push(("next", next));
    html! {
        nav.pager aria-label="Pages" {
            a rel="next" href={ (BASE) (path) (guard::query(&pairs)) } { (label) }
        }
    }
}

/// A client error, to show on the page; anything else stays an error (its own page).
pub fn shown(e: ApiError) -> Result<ApiError, ApiError> {
    if e.status.is_client_error() { Ok(e) } else { Err(e) }
}
