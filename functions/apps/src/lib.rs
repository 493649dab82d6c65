//! The apps catalog route group (the Omniverse portal sample), served by the `apps` Lambda function.
//!
//! | route | who may call | answer |
//! |-------|--------------|--------|
//! | `GET /apps` | any valid bearer | `{"items": [...], "next": cursor\|null}`; `limit`, `next`, `category`, `product_area`, `status` |
//! | `GET /apps/{slug}` | any valid bearer | the app, with `ETag` |
//! | `PUT /apps/{slug}` | `app.publish` on the app's group | 201 created / 200 replaced, with `ETag`; honours `If-Match`, `If-None-Match: *` |
//! | `DELETE /apps/{slug}` | `app.delete` on the app's group | 204; 404 when absent; honours `If-Match` |
//! | `GET /healthz` | anyone | `{"status": "ok"}`: the function is up (no store, no token) |
//! | `GET /openapi.json` | anyone | the OpenAPI 3.1 document of every route, RPC methods from the configured descriptors |
//! | `GET /docs`, `GET /docs/{asset}` | anyone | the API reference page (Redoc, embedded) and its script |
//!
//! This function also owns API Gateway's `$default` route, so an unknown path anywhere gets
//! Portico's JSON 404.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use http::{StatusCode, header};
use portico_core::apps::{App, AppFilter, AppInput, Catalog};
use portico_core::authz::Action;
use portico_core::openapi::errors::{
    ConditionalDeleteErrors, ConditionalWriteErrors, Error400, Error401, Error404, Error503, ReadErrors,
};
use portico_core::openapi::{IfMatch, IfNoneMatch, Paging, SlugPath, docs};
use portico_core::web::{self, ApiResponse, PagedQuery, PathParams, Request, Routes};
use portico_core::{Error, Services, codes};
use portico_streaming::AppStatuses;
use portico_streaming::functions::{AppStatus, status_of};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// An app as answered: the record and its availability on the streaming platform.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AppView {
    #[serde(flatten)]
    pub app: App,
    pub status: AppStatus,
}

/// The record's fields read through the view (`view.slug`).
impl std::ops::Deref for AppView {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}

/// A page of `GET /apps`: follow `next` until it is `null`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AppPage {
    pub items: Vec<AppView>,
    pub next: Option<String>,
}

/// `GET /healthz`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// The committed OpenAPI document (`openapi.json`, generated from every route group's
/// declarations; the suite fails when it is not current), gzip-compressed by `build.rs`;
/// served as it is, or with the RPC methods of this deployment's descriptors in place of the
/// default ones.
static COMMITTED_DOCUMENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/openapi.json.gz"));

fn committed_document() -> Result<String, String> {
    use std::io::Read as _;
    let mut text = String::new();
    flate2::read::GzDecoder::new(COMMITTED_DOCUMENT).read_to_string(&mut text).map_err(|e| e.to_string())?;
    Ok(text)
}

/// The apps route group's state.
pub struct AppsApi {
    services: Arc<Services>,
    /// The streaming platform's word on each app's function.
    statuses: AppStatuses,
    /// `/openapi.json` for this configuration, made on first request.
    document: OnceLock<Result<String, String>>,
}

impl AppsApi {
    /// The group, serving `services`, with the platform's `statuses` of the apps.
    pub fn routes(services: Arc<Services>, statuses: AppStatuses) -> Routes {
        let config = services.config.clone();
        let state = Arc::new(AppsApi { services, statuses, document: OnceLock::new() });
        Routes::new("apps", &config, state, declared()).with_route_keys(&["$default"])
    }

    /// The OpenAPI document for this process's configuration. The descriptors are the ones the
    /// RPC gateway loads without dialling an upstream (services learnt by reflection are not
    /// listed: this function has no channel to the upstream).
    fn document(&self) -> Result<&str, Error> {
        let made = self.document.get_or_init(|| {
            let committed = committed_document()?;
            portico_rpc::openapi::served(&committed, &self.services.config).map_err(|e| e.to_string())
        });
        made.as_deref().map_err(|e| Error::Internal(format!("the OpenAPI document: {e}")))
    }
}

/// Every route of the group, each declared on its handler.
pub fn declared() -> OpenApiRouter<Arc<AppsApi>> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(openapi_json))
        .routes(routes!(docs_page))
        .routes(routes!(docs_asset))
        .routes(routes!(list))
        .routes(routes!(get, put, delete))
}

/// Liveness
///
/// Up, without touching the store or any token.
#[utoipa::path(get, path = "/healthz", tag = "meta", security(()), responses(
    (status = 200, description = "Up", body = Health),
))]
async fn health() -> ApiResponse {
    web::json(StatusCode::OK, &Health { status: "ok".into() })
}

/// This document
#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(()), responses(
    (status = 200, description = "OpenAPI 3.1, JSON", content_type = "application/json", body = String),
))]
async fn openapi_json(State(api): State<Arc<AppsApi>>) -> Result<ApiResponse, Error> {
    Ok(docs::document(api.document()?))
}

/// The API reference page
#[utoipa::path(get, path = "/docs", tag = "meta", security(()), responses(
    (status = 200, description = "HTML (Redoc, served from this API)", content_type = "text/html", body = String),
))]
async fn docs_page() -> ApiResponse {
    docs::page()
}

/// The reference page's script
#[utoipa::path(get, path = "/docs/{asset}", tag = "meta", security(()),
    params(("asset" = String, Path, description = "The script's name, as the page names it.")),
    responses(
        (status = 200, description = "Redoc's standalone bundle, cached for a year", content_type = "text/javascript", body = String),
        (status = 404, response = Error404),
    ),
)]
async fn docs_asset(PathParams(asset): PathParams<String>) -> Result<ApiResponse, Error> {
    docs::asset(&asset).ok_or_else(|| Error::NotFound(format!("no asset {}", portico_core::input::shown_key(&asset))))
}

/// The catalog's filters (`GET /apps`).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AppFilters {
    /// Exact match.
    category: Option<String>,
    /// Exact match.
    product_area: Option<String>,
    /// Only apps in this platform status; pages may be short.
    #[param(value_type = Option<AppStatus>, inline)]
    status: Option<String>,
}

/// List the apps
#[utoipa::path(get, path = "/apps", tag = "apps",
    params(Paging, AppFilters),
    responses(
        (status = 200, description = "A page of apps", body = AppPage,
            example = json!({"items": [portico_core::openapi::schemas::usd_validate_view()], "next": null})),
        (status = 400, response = Error400),
        (status = 401, response = Error401),
        (status = 503, response = Error503),
    ),
)]
async fn list(
    State(api): State<Arc<AppsApi>>,
    query: Result<PagedQuery<AppFilters>, Error>,
    Request(req): Request,
) -> Result<ApiResponse, Error> {
    api.services.principal(&req).await?;
    let query = query?;
    let (limit, after) = query.paging(&api.services.config)?;
    let AppFilters { category, product_area, status } = query.filters;
    let filter = AppFilter { category, product_area };
    let wanted = match status.as_deref() {
        Some(s) => Some(AppStatus::parse(s).ok_or_else(|| {
            Error::bad_request(codes::INVALID_QUERY, "'status' is one of ACTIVE, INACTIVE, DEPLOYING, ERROR, UNKNOWN")
        })?),
        None => None,
    };
    let (apps, next) = api.catalog().list(&filter, limit, after).await?;
    let versions: Vec<_> = apps.iter().map(|a| (a.function_id.clone(), a.function_version_id.clone())).collect();
    let statuses = api.statuses.app_statuses(&versions).await;
    // The status filter applies to the page read: like the others, pages may be short.
    let items = apps
        .into_iter()
        .map(|app| {
            let status = status_of(&statuses, &app.function_id, &app.function_version_id);
            AppView { app, status }
        })
        .filter(|v| wanted.is_none_or(|w| v.status == w))
        .collect();
    Ok(web::json(StatusCode::OK, &AppPage { items, next: next.as_ref().map(|c| c.as_str().to_owned()) }))
}

/// Get an app
#[utoipa::path(get, path = "/apps/{slug}", tag = "apps",
    params(SlugPath),
    responses(
        (status = 200, description = "The app, with `ETag`", body = AppView,
            example = json!(portico_core::openapi::schemas::usd_validate_view())),
        ReadErrors,
    ),
)]
async fn get(
    State(api): State<Arc<AppsApi>>,
    PathParams(slug): PathParams<String>,
    Request(req): Request,
) -> Result<ApiResponse, Error> {
    api.services.principal(&req).await?;
    let app = api.catalog().get(&slug).await?;
    Ok(web::with_etag(web::json(StatusCode::OK, &api.view(app.value).await), &app.etag))
}

/// Publish or replace an app
///
/// Needs `app.publish` on the app's group (both groups when a replace moves it).
#[utoipa::path(put, path = "/apps/{slug}", tag = "apps",
    params(SlugPath, IfMatch, IfNoneMatch),
    request_body(content = AppInput, example = json!(portico_core::openapi::schemas::usd_validate())),
    responses(
        (status = 200, description = "Replaced, with `ETag`", body = AppView,
            example = json!(portico_core::openapi::schemas::usd_validate_view())),
        (status = 201, description = "Created, with `ETag` and `Location`", body = AppView,
            example = json!(portico_core::openapi::schemas::usd_validate_view())),
        ConditionalWriteErrors,
    ),
)]
async fn put(
    State(api): State<Arc<AppsApi>>,
    PathParams(slug): PathParams<String>,
    Request(req): Request,
) -> Result<ApiResponse, Error> {
    let who = api.services.principal(&req).await?;
    who.require_somewhere(Action::AppPublish)?;
    let precondition = web::precondition(&req)?;
    let input: AppInput = web::json_body(&req, &api.services.config)?;
    let (app, created) = api.catalog().put(&who, &slug, input, &precondition).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let mut response = web::with_etag(web::json(status, &api.view(app.value).await), &app.etag);
    if created && let Ok(location) = format!("/apps/{slug}").parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Delete an app
///
/// Needs `app.delete` on the app's group.
#[utoipa::path(delete, path = "/apps/{slug}", tag = "apps",
    params(SlugPath, IfMatch),
    responses(
        (status = 204, description = "Deleted"),
        ConditionalDeleteErrors,
    ),
)]
async fn delete(
    State(api): State<Arc<AppsApi>>,
    PathParams(slug): PathParams<String>,
    Request(req): Request,
) -> Result<ApiResponse, Error> {
    let who = api.services.principal(&req).await?;
    who.require_somewhere(Action::AppDelete)?;
    api.catalog().delete(&who, &slug, &web::precondition(&req)?).await?;
    Ok(web::empty(StatusCode::NO_CONTENT))
}

impl AppsApi {
    async fn view(&self, app: App) -> AppView {
        let status = self.statuses.app_status(&app.function_id, &app.function_version_id).await;
        AppView { app, status }
    }

    fn catalog(&self) -> Catalog<'_> {
        Catalog::new(self.services.table.as_ref())
    }
}
