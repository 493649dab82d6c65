//! The local emulator of API Gateway's HTTP API (payload format 2.0).
//!
//! Each request becomes the JSON event API Gateway would send, is parsed by `lambda_http`
//! exactly as on Lambda, and is handled in-process by the function's own handler
//! ([`portico_core::lambda::handle`]). Routes are the functions' API Gateway route keys,
//! selected as API Gateway selects them (most specific first, `$default` last), on the path
//! percent-decoded as API Gateway decodes it ([`path`]).
//!
//! The platform's limits apply where a deployment applies them: API Gateway's 10 MB body and
//! 10 KB head (`limits`), then Lambda's 6 MB synchronous invocation payload, counted on the
//! event's JSON going in (a binary body base64-encoded, headers and all) and on the
//! function's response coming out.
//!
//! The same listener serves the WebSocket API ([`ws::WsApi`]) on `Upgrade: websocket` requests
//! to its path.
pub mod demo;
pub mod demo_argo;
pub mod demo_cluster;
pub mod demo_guacamole;
pub mod demo_nvcf;
pub mod demo_store;
pub mod demo_user_office;
mod http_api;
pub mod kubernetes;
mod limits;
pub mod path;
mod routing;
mod server;
pub mod ws;

use std::sync::Arc;

pub use http_api::HttpApi;
use portico_core::Services;
use portico_core::web::RouteGroup;
use portico_desktops::DesktopClients;
use portico_jobs::JobClients;
pub use portico_rpc::gateway::Gateway as RpcGateway;
use portico_streaming::Streaming;
pub use server::{Running, start, start_on};

/// API Gateway's HTTP API payload limit.
pub const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

/// API Gateway's HTTP API quota on the request line and header values together.
pub const MAX_HEAD_BYTES: usize = 10 * 1024;

/// Lambda's synchronous invocation payload, going in: the event's JSON. Lambda refuses a
/// larger one ("Request must be smaller than 6291456 bytes for the InvokeFunction
/// operation"), and API Gateway answers the client 413.
pub const MAX_INVOKE_REQUEST_BYTES: usize = 6 * 1024 * 1024;

/// Lambda's synchronous invocation payload, coming out: the response's JSON (the runtime's
/// post of a larger one fails, "Exceeded maximum allowed payload size (6291556 bytes)", and
/// API Gateway answers the client 500 `{"message":"Internal Server Error"}`).
pub const MAX_INVOKE_RESPONSE_BYTES: usize = 6 * 1024 * 1024 + 100;

/// Every client of the whole API, as one process (the emulator, the tests) holds them: the
/// platform's services and each domain's own. On AWS each function builds only its part.
pub struct Platform {
    pub services: Services,
    pub streaming: Streaming,
    pub jobs: JobClients,
    pub desktops: DesktopClients,
}

impl Platform {
    /// The domains' clients over `services`, as their configuration names them.
    pub fn new(services: Services) -> Platform {
        // On NVCF, the bridges run as tasks of this process.
        let streaming = match portico_streaming::nvcf_signaling(&services) {
            Some(signaling) => {
                let tickets =
                    portico_streaming::bridge::HostTickets::new(Arc::clone(&services.table), services.config.clone());
                let bridges = Arc::new(portico_streaming::bridge::LocalBridges::new(signaling, Some(tickets)));
                Streaming::from_services(&services).with_bridges(&services, bridges)
            }
            None => Streaming::from_services(&services),
        };
        Platform {
            streaming,
            jobs: JobClients::from_services(&services),
            desktops: DesktopClients::from_services(&services),
            services,
        }
    }

    /// The clients, shared by the route groups.
    pub fn shared(self) -> Shared {
        Shared {
            services: Arc::new(self.services),
            streaming: Arc::new(self.streaming),
            jobs: Arc::new(self.jobs),
            desktops: Arc::new(self.desktops),
        }
    }
}

/// A [`Platform`] shared by the route groups that serve it.
#[derive(Clone)]
pub struct Shared {
    pub services: Arc<Services>,
    pub streaming: Arc<Streaming>,
    pub jobs: Arc<JobClients>,
    pub desktops: Arc<DesktopClients>,
}

impl Shared {
    /// The sessions' relay (the WebSocket API; the `sweeper` function's work).
    pub fn relay(&self) -> portico_sessions::RelayApi {
        portico_sessions::RelayApi::new(Arc::clone(&self.services), Arc::clone(&self.streaming))
    }

    /// The desktops' API (the `desktops-sweeper` function's work).
    pub fn desktops(&self) -> portico_desktops_api::DesktopsApi {
        portico_desktops_api::DesktopsApi::new(Arc::clone(&self.services), Arc::clone(&self.desktops))
    }

    /// The jobs' API (the `reconciler` function's work).
    pub fn jobs(&self) -> portico_jobs_api::JobsApi {
        portico_jobs_api::JobsApi::new(Arc::clone(&self.services), Arc::clone(&self.jobs))
    }
}

/// Every HTTP route group of Portico, over one platform and the RPC gateway.
pub fn route_groups(platform: &Shared, rpc: Arc<RpcGateway>) -> Vec<Arc<dyn RouteGroup>> {
    let Shared { services, streaming, jobs, desktops } = platform;
    vec![
        Arc::new(portico_apps::AppsApi::routes(Arc::clone(services), streaming.statuses.clone())),
        Arc::new(portico_auth::AuthApi::routes(Arc::clone(services))),
        Arc::new(portico_admin::AdminApi::routes(Arc::clone(services))),
        Arc::new(portico_sessions::SessionsApi::routes(Arc::clone(services), Arc::clone(streaming))),
        Arc::new(portico_jobs_api::JobsApi::routes(Arc::clone(services), Arc::clone(jobs))),
        Arc::new(portico_console::Console::new(
            Arc::clone(services),
            portico_console::Domains {
                streaming: Arc::clone(streaming),
                jobs: Arc::clone(jobs),
                desktops: Arc::clone(desktops),
            },
        )),
        Arc::new(portico_desktops_api::DesktopsApi::routes(Arc::clone(services), Arc::clone(desktops))),
        Arc::new(portico_rpc_api::RpcApi::routes(Arc::clone(services), rpc)),
    ]
}

/// The whole OpenAPI document for `config`, from what each route group declares on its
/// handlers and the RPC methods of the configured descriptors: what `openapi.json` holds for
/// the default configuration, and the apps function serves.
pub fn openapi_document(config: &portico_core::Config) -> Result<utoipa::openapi::OpenApi, String> {
    let mut api = portico_core::openapi::spec();
    api.merge(<portico_jobs::Components as utoipa::OpenApi>::openapi());
    api.merge(<portico_streaming::Components as utoipa::OpenApi>::openapi());
    portico_core::openapi::add_declared(&mut api, portico_apps::declared().into_openapi());
    portico_core::openapi::add_declared(&mut api, portico_auth::declared().into_openapi());
    portico_core::openapi::add_declared(&mut api, portico_admin::declared().into_openapi());
    portico_core::openapi::add_declared(&mut api, portico_sessions::declared().into_openapi());
    portico_core::openapi::add_declared(&mut api, portico_jobs_api::declared().into_openapi());
    portico_core::openapi::add_declared(&mut api, portico_desktops_api::declared().into_openapi());
    portico_core::openapi::add_declared(&mut api, portico_rpc_api::declared().into_openapi());
    let descriptors = portico_rpc::descriptors::Descriptors::configured(config).map_err(|e| e.to_string())?;
    portico_rpc::openapi::add_methods(&mut api, &descriptors);
    Ok(api)
}

/// The RPC gateway for `config` (descriptors, reflection, channels), as the rpc function
/// builds it at a cold start.
pub async fn rpc_gateway(config: &portico_core::Config) -> Result<Arc<RpcGateway>, String> {
    RpcGateway::new(config).await.map(Arc::new)
}

use portico_streaming::direct::DirectStreams;

/// The path of the emulated WebSocket API.
pub const WS_PATH: &str = "/ws";

/// What one emulator serves: the HTTP API and, optionally, a WebSocket API and the streaming
/// portal's signaling sockets (which on AWS the bridge service serves behind CloudFront, on the
/// same path as the HTTP API's portal routes).
pub struct Gateway {
    pub http: HttpApi,
    pub ws: Option<ws::WsApi>,
    pub streams: Option<Arc<DirectStreams>>,
}

impl From<HttpApi> for Gateway {
    fn from(http: HttpApi) -> Self {
        Gateway { http, ws: None, streams: None }
    }
}

/// Portico's whole API over `platform`: every HTTP route group, and the relay as the
/// WebSocket API at [`WS_PATH`]. Replaces the platform's pusher with the emulator's sockets,
/// so build the platform, then call this before sharing it.
pub fn portico_gateway(mut platform: Platform, rpc: Arc<RpcGateway>) -> (Gateway, Shared) {
    let connections = Arc::new(ws::LocalConnections::default());
    platform.streaming.pusher = connections.clone();
    let shared = platform.shared();
    let ws = ws::WsApi { path: WS_PATH.into(), handler: Arc::new(shared.relay()), connections };
    let streams =
        shared.streaming.nvcf.clone().map(|nvcf| Arc::new(DirectStreams::new(Arc::clone(&shared.services), nvcf)));
    (Gateway { http: HttpApi::new(route_groups(&shared, rpc)), ws: Some(ws), streams }, shared)
}

#[cfg(test)]
mod tests;
