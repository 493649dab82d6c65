//! The RPC gateway route group (seed 001): OpenCue's gRPC API, and any other described
//! service, as JSON over HTTP, with the shapes OpenCue's REST gateway (grpc-gateway) uses, so
//! CueWeb works unchanged.
//!
//! | route | who may call | answer |
//! |-------|--------------|--------|
//! | `POST /<package.Service>/<Method>`, one route per exposed service | `rpc.call` on the upstream's group, within `rpc_method_rules` | the response message as protojson; errors `{"code": <gRPC code>, "message", "details"}` |
//! | `GET /rpc/services` | any valid bearer | `{"services": [{"name", "group", "methods": [{"name", "path", "request", "response"}]}]}` |

use std::sync::Arc;

use http::{Method, StatusCode};
use portico_core::web::{self, ApiRequest, ApiResponse, RouteGroup};
use portico_core::{Config, Error, Services};
use portico_rpc::gateway::Gateway;
use portico_rpc::status::Code;
use portico_rpc::status::RpcError;

pub struct RpcApi {
    services: Arc<Services>,
    gateway: Arc<Gateway>,
}

impl RpcApi {
    pub fn new(services: Arc<Services>, gateway: Arc<Gateway>) -> Self {
        RpcApi { services, gateway }
    }
}

#[async_trait::async_trait]
impl RouteGroup for RpcApi {
    fn name(&self) -> &'static str {
        "rpc"
    }

    /// One route per exposed service: a bare `POST /{service}/{method}` would be a full match
    /// for `POST /admin/users` and take it from `ANY /admin/{proxy+}` (API Gateway prefers a
    /// full match to a greedy one), so each service's dotted name is a literal segment.
    fn route_keys(&self) -> Vec<String> {
        let services = self.gateway.descriptors.services();
        let calls = services.iter().map(|s| format!("POST /{}/{{method}}", s.full_name()));
        calls.chain(["ANY /rpc/services".to_owned()]).collect()
    }

    fn config(&self) -> &Config {
        &self.services.config
    }

    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        match (req.method(), web::segments(req).as_slice()) {
            (&Method::GET, ["rpc", "services"]) => {
                self.services.principal(req).await?;
                Ok(web::json(StatusCode::OK, self.gateway.listing()))
            }
            (_, ["rpc", "services"]) => Err(web::method_not_allowed(req, &[Method::GET])),
            (&Method::POST, [service, method]) => {
                Ok(self.call(req, service, method).await.unwrap_or_else(|e| rpc_error(&e)))
            }
            _ => Err(web::no_route(req)),
        }
    }

    fn oversized(&self, size: usize, limit: usize) -> ApiResponse {
        let message = Error::ResponseTooLarge { size, limit }.to_string();
        rpc_error(&RpcError::new(StatusCode::BAD_GATEWAY, Code::ResourceExhausted, message))
    }
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
