//! The RPC gateway route group (OpenCue's REST gateway): OpenCue's gRPC API, and any other described
//! service, as JSON over HTTP, with the shapes OpenCue's REST gateway (grpc-gateway) uses, so
//! CueWeb works unchanged. `POST /<package.Service>/<Method>` calls a method (`rpc.call` on the
//! upstream's group, within `rpc_method_rules`; errors `{"code": <gRPC code>, "message",
//! "details"}`); its operations come from the descriptors (`portico_rpc::openapi`).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use http::StatusCode;
use portico_core::openapi::errors::Error401;
use portico_core::web::{self, ApiRequest, ApiResponse, PathParams, Request, Routes};
use portico_core::{Error, Services};
use portico_rpc::gateway::{Gateway, Listing};
use portico_rpc::status::{Code, RpcError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The RPC route group's state.
pub struct RpcApi {
    services: Arc<Services>,
    gateway: Arc<Gateway>,
}

impl RpcApi {
    /// The group, serving `services` through `gateway`. API Gateway routes one key per exposed
    /// service to it: a bare `POST /{service}/{method}` would be a full match for `POST
    /// /admin/users` and take it from `ANY /admin/{proxy+}` (API Gateway prefers a full match
    /// to a greedy one), so each service's dotted name is a literal segment.
    pub fn routes(services: Arc<Services>, gateway: Arc<Gateway>) -> Routes {
        let config = services.config.clone();
        let described = Arc::clone(&gateway);
        let keys = move || {
            let services = described.descriptors().services();
            services.iter().map(|s| format!("POST /{}/{{method}}", s.full_name())).collect()
        };
        let state = Arc::new(RpcApi { services, gateway });
        // The methods are described by the descriptors, not by a declaration here.
        let routes = declared().route("/{service}/{method}", post(call));
        Routes::new("rpc", &config, state, routes).with_route_keys_from(keys).with_oversized(oversized)
    }
}

/// The routes of the group declared here: the listing.
pub fn declared() -> OpenApiRouter<Arc<RpcApi>> {
    OpenApiRouter::new().routes(routes!(services))
}

/// List the RPC methods
#[utoipa::path(get, path = "/rpc/services", tag = "rpc", responses(
    (status = 200, description = "Every exposed service and method", body = Listing),
    (status = 401, response = Error401),
))]
async fn services(State(api): State<Arc<RpcApi>>, Request(req): Request) -> Result<ApiResponse, Error> {
    api.services.principal(&req).await?;
    Ok(web::json(StatusCode::OK, api.gateway.listing()))
}

/// One method call; every answer, errors included, in grpc-gateway's shapes.
async fn call(
    State(api): State<Arc<RpcApi>>,
    PathParams((service, method)): PathParams<(String, String)>,
    Request(req): Request,
) -> ApiResponse {
    api.call(&req, &service, &method).await.unwrap_or_else(|e| rpc_error(&e))
}

/// A response over Lambda's limit, in grpc-gateway's shape.
fn oversized(size: usize, limit: usize) -> ApiResponse {
    let message = Error::ResponseTooLarge { size, limit }.to_string();
    rpc_error(&RpcError::new(StatusCode::BAD_GATEWAY, Code::ResourceExhausted, message))
}

impl RpcApi {
    async fn call(&self, req: &ApiRequest, service: &str, method: &str) -> Result<ApiResponse, RpcError> {
        let who = self.services.principal(req).await?;
        let limit = self.services.config.max_body_bytes;
        if req.body().len() > limit {
            return Err(Error::PayloadTooLarge { limit }.into());
        }
        let answer = self.gateway.call(&who, service, method, req.body(), req.headers()).await?;
        let mut response = web::json(StatusCode::OK, &answer.body);
        response.headers_mut().extend(answer.headers);
        Ok(response)
    }
}

/// An error in grpc-gateway's shape; a 401 carries the same challenge as every other route's.
fn rpc_error(e: &RpcError) -> ApiResponse {
    let mut r = web::json(e.http, &e.body());
    if e.http == StatusCode::UNAUTHORIZED {
        web::bearer_challenge(&mut r);
    }
    r
}
