//! The desktops route group (CalipsoPlus, seed 002): so far the registry of desktop
//! environments. Administrators write it; anyone signed in lists and reads the environments
//! they may start (`desktop.start` on the environment's group; others are 404).
//!
//! | route | who may call | answer |
//! |-------|--------------|--------|
//! | `GET /environments` | signed in | a page of the environments the caller may start |
//! | `GET /environments/{name}` | who may start it | the environment |
//! | `PUT /environments/{name}` | admins | the environment, 201 created / 200 replaced |
//! | `DELETE /environments/{name}` | admins | 204 |

use std::sync::Arc;

use axum::extract::State;
use http::StatusCode;
use portico_core::openapi::errors::{
    Error400, Error401, Error403, Error413, Error415, Error503, ListErrors, ReadErrors,
};
use portico_core::openapi::{EnvironmentPath, Paging};
use portico_core::web::{self, ApiResponse, NoFilters, PagedQuery, PathParams, Request, Routes};
use portico_core::{Error, Services};
use portico_desktops::environments::{Environment, EnvironmentInput, Environments};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The desktops route group's state.
pub struct DesktopsApi {
    services: Arc<Services>,
}

impl DesktopsApi {
    /// The group, serving `services`.
    pub fn routes(services: Arc<Services>) -> Routes {
        let config = services.config.clone();
        Routes::new("desktops", &config, Arc::new(DesktopsApi { services }), declared())
    }

    fn environments(&self) -> Environments<'_> {
        Environments { table: self.services.table.as_ref() }
    }
}

/// Every route of the group, each declared on its handler.
pub fn declared() -> OpenApiRouter<Arc<DesktopsApi>> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(get, put, delete))
}

type Api = State<Arc<DesktopsApi>>;
type Answer = Result<ApiResponse, Error>;

/// A page of environments.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentPage {
    pub items: Vec<Environment>,
    /// The cursor of the next page (`next=`), if any.
    pub next: Option<String>,
}

/// List desktop environments
///
/// Those the caller may start (`desktop.start` on their group); administrators see every one.
/// Pages may be short.
#[utoipa::path(get, path = "/environments", tag = "desktops", params(Paging), responses(
    (status = 200, description = "A page of environments", body = EnvironmentPage),
    ListErrors,
))]
async fn list(State(api): Api, query: Result<PagedQuery<NoFilters>, Error>, Request(req): Request) -> Answer {
    let who = api.services.principal(&req).await?;
    let (limit, after) = query?.paging(&api.services.config)?;
    let (items, next) = api.environments().list(&who, limit, after).await?;
    let next = next.map(|c| c.as_str().to_owned());
    Ok(web::json(StatusCode::OK, &EnvironmentPage { items, next }))
}

/// Get a desktop environment
///
/// 404 unless the caller may start it.
#[utoipa::path(get, path = "/environments/{name}", tag = "desktops", params(EnvironmentPath), responses(
    (status = 200, description = "The environment", body = Environment),
    ReadErrors,
))]
async fn get(State(api): Api, PathParams(name): PathParams<String>, Request(req): Request) -> Answer {
    let who = api.services.principal(&req).await?;
    Ok(web::json(StatusCode::OK, &api.environments().startable(&who, &name).await?))
}

/// Create or replace a desktop environment
///
/// Administrators.
#[utoipa::path(put, path = "/environments/{name}", tag = "desktops", params(EnvironmentPath),
    request_body = EnvironmentInput,
    responses(
        (status = 200, description = "Replaced", body = Environment),
        (status = 201, description = "Created", body = Environment),
        (status = 400, response = Error400), (status = 401, response = Error401), (status = 403, response = Error403),
        (status = 413, response = Error413), (status = 415, response = Error415), (status = 503, response = Error503),
    ),
)]
async fn put(State(api): Api, PathParams(name): PathParams<String>, Request(req): Request) -> Answer {
    api.services.require_admin(&req).await?;
    let input: EnvironmentInput = web::json_body(&req, &api.services.config)?;
    let (environment, created) = api.environments().put(&name, input).await?;
    Ok(web::json(if created { StatusCode::CREATED } else { StatusCode::OK }, &environment))
}

/// Delete a desktop environment
///
/// Administrators. Desktops already running keep running.
#[utoipa::path(delete, path = "/environments/{name}", tag = "desktops", params(EnvironmentPath), responses(
    (status = 204, description = "Deleted"),
    (status = 401, response = Error401), (status = 403, response = Error403),
    (status = 404, response = portico_core::openapi::errors::Error404), (status = 503, response = Error503),
))]
async fn delete(State(api): Api, PathParams(name): PathParams<String>, Request(req): Request) -> Answer {
    api.services.require_admin(&req).await?;
    api.environments().delete(&name).await?;
    Ok(web::empty(StatusCode::NO_CONTENT))
}
