//! The apps catalog route group (seed 000), served by the `apps` Lambda function.
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

use http::{Method, StatusCode, header};
use portico_core::apps::{App, AppFilter, AppInput, Catalog};
use portico_core::authz::Action;
use portico_core::openapi::docs;
use portico_core::relay::functions::{AppStatus, status_of};
use portico_core::store::Cursor;
use portico_core::web::{self, ApiRequest, ApiResponse, RouteGroup};
use portico_core::{Config, Error, Services, codes};

/// An app as answered: the record and its availability on the streaming platform.
#[derive(serde::Serialize)]
struct AppView<'a> {
    #[serde(flatten)]
    app: &'a App,
    status: AppStatus,
}

/// A page of `GET /apps`; `next` is present while more apps may follow.
#[derive(serde::Serialize)]
struct AppPage<'a> {
    items: Vec<AppView<'a>>,
    next: Option<&'a str>,
}

/// The apps route group.
pub struct AppsApi {
    services: Arc<Services>,
    /// `/openapi.json`, made on first request (a few milliseconds: ~300 RPC methods).
    document: OnceLock<Result<String, String>>,
}

impl AppsApi {
    pub fn new(services: Arc<Services>) -> Self {
        AppsApi { services, document: OnceLock::new() }
    }

    /// The OpenAPI document for this process's configuration. The descriptors are the ones the
    /// RPC gateway loads without dialling an upstream (services learnt by reflection are not
    /// listed: this function has no channel to the upstream).
    fn document(&self) -> Result<&str, Error> {
        let made = self.document.get_or_init(|| {
            portico_rpc::openapi::document(&self.services.config)
                .map(|api| portico_core::openapi::to_json(&api))
                .map_err(|e| e.to_string())
        });
        made.as_deref().map_err(|e| Error::Internal(format!("the OpenAPI document: {e}")))
    }
}

const APPS: &[Method] = &[Method::GET];
const APP: &[Method] = &[Method::GET, Method::PUT, Method::DELETE];

#[async_trait::async_trait]
impl RouteGroup for AppsApi {
    fn name(&self) -> &'static str {
        "apps"
    }

    fn route_keys(&self) -> Vec<String> {
        [
            "ANY /apps",
            "ANY /apps/{proxy+}",
            "GET /healthz",
            "GET /openapi.json",
            "GET /docs",
            "GET /docs/{proxy+}",
            "$default",
        ]
        .map(String::from)
        .into()
    }

    fn config(&self) -> &Config {
        &self.services.config
    }

    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        match (req.method(), web::segments(req).as_slice()) {
            // Up, without touching the store or any token: for load balancers and probes.
            (&Method::GET, ["healthz"]) => Ok(web::json(StatusCode::OK, &serde_json::json!({"status": "ok"}))),
            // Public: the API's description, and the page that renders it.
            (&Method::GET, ["openapi.json"]) => Ok(docs::document(self.document()?)),
            (&Method::GET, ["docs"]) => Ok(docs::page()),
            (&Method::GET, ["docs", name]) => docs::asset(name).ok_or_else(|| web::no_route(req)),
            (&Method::GET, ["apps"]) => self.list(req).await,
            (&Method::GET, ["apps", slug]) => self.get(req, slug).await,
            (&Method::PUT, ["apps", slug]) => self.put(req, slug).await,
            (&Method::DELETE, ["apps", slug]) => self.delete(req, slug).await,
            (_, ["apps"]) => Err(web::method_not_allowed(req, APPS)),
            (_, ["apps", _]) => Err(web::method_not_allowed(req, APP)),
            _ => Err(web::no_route(req)),
        }
    }
}

impl AppsApi {
    async fn view<'a>(&self, app: &'a App) -> AppView<'a> {
        AppView { app, status: self.services.app_status(&app.function_id, &app.function_version_id).await }
    }

    fn catalog(&self) -> Catalog<'_> {
        Catalog::new(self.services.table.as_ref())
    }

    async fn list(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        self.services.principal(req).await?;
        let params = web::query_params(req, &["limit", "next", "category", "product_area", "status"])?;
        let param = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let limit = web::page_limit(param("limit"), &self.services.config)?;
        let filter = AppFilter {
            category: param("category").map(str::to_owned),
            product_area: param("product_area").map(str::to_owned),
        };
        let after = param("next").map(Cursor::from_client);
        let wanted = match param("status") {
            Some(s) => Some(AppStatus::parse(s).ok_or_else(|| {
                Error::bad_request(
                    codes::INVALID_QUERY,
                    "'status' is one of ACTIVE, INACTIVE, DEPLOYING, ERROR, UNKNOWN",
                )
            })?),
            None => None,
        };
        let (apps, next) = self.catalog().list(&filter, limit, after).await?;
        let versions: Vec<_> = apps.iter().map(|a| (a.function_id.clone(), a.function_version_id.clone())).collect();
        let statuses = self.services.app_statuses(&versions).await;
        // The status filter applies to the page read: like the others, pages may be short.
        let items = apps
            .iter()
            .map(|app| AppView { app, status: status_of(&statuses, &app.function_id, &app.function_version_id) })
            .filter(|v| wanted.is_none_or(|w| v.status == w))
            .collect();
        Ok(web::json(StatusCode::OK, &AppPage { items, next: next.as_ref().map(Cursor::as_str) }))
    }

    async fn get(&self, req: &ApiRequest, slug: &str) -> Result<ApiResponse, Error> {
        self.services.principal(req).await?;
        let app = self.catalog().get(slug).await?;
        Ok(web::with_etag(web::json(StatusCode::OK, &self.view(&app.value).await), &app.etag))
    }

    async fn put(&self, req: &ApiRequest, slug: &str) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        who.require_somewhere(Action::AppPublish)?;
        let precondition = web::precondition(req)?;
        let input: AppInput = web::json_body(req, &self.services.config)?;
        let (app, created) = self.catalog().put(&who, slug, input, &precondition).await?;
        let status = if created { StatusCode::CREATED } else { StatusCode::OK };
        let mut response = web::with_etag(web::json(status, &self.view(&app.value).await), &app.etag);
        if created && let Ok(location) = format!("/apps/{slug}").parse() {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Ok(response)
    }

    async fn delete(&self, req: &ApiRequest, slug: &str) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        who.require_somewhere(Action::AppDelete)?;
        self.catalog().delete(&who, slug, &web::precondition(req)?).await?;
        Ok(web::empty(StatusCode::NO_CONTENT))
    }
}
