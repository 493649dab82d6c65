//! A stand-in streaming platform for local development, so `cargo run` can stream sessions
//! end to end without the real platform.
//!
//! It speaks the two calls Portico makes (see `portico_streaming::{launch, functions}`):
//! the function list reports every published app's function version as `ACTIVE`, and a launch
//! starts a demo host that joins the relay with its ticket and answers each signal with
//! `{"echo": <data>}` until the session ends. Both calls require the local API key, so the
//! key's path through Portico is the production one.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use http::{Method, StatusCode};
use portico_core::apps::{AppFilter, Catalog};
use portico_core::web::{self, ApiRequest, ApiResponse, RouteGroup};
use portico_core::{Config, Error, Services};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Where the demo platform is mounted on the emulator.
pub const DEMO_PATH: &str = "/demo-platform";

/// The API key the demo platform expects (a local secret, not a real credential).
pub const DEMO_API_KEY: &str = "local-demo-platform-key";

/// Points `config` at the demo platform on `base` (the emulator's own URL) unless a platform
/// is configured. Returns whether it did.
pub fn configure(config: &mut Config, base: &str) -> bool {
    if config.stream_launch_url.is_some() {
        return false;
    }
    config.stream_launch_url = Some(format!("{base}{DEMO_PATH}/functions"));
    config.stream_functions_url = Some(format!("{base}{DEMO_PATH}/functions"));
    config.local_secrets.entry(config.stream_api_key_secret_id.clone()).or_insert_with(|| DEMO_API_KEY.into());
    true
}

/// Adds the demo platform's routes to `gateway` (built by [`crate::portico_gateway`]).
pub fn mount(gateway: &mut crate::Gateway, services: &Arc<Services>) {
    gateway.http.add(Arc::new(DemoPlatform::new(Arc::clone(services))));
}

/// Starts the demo Cuebot on 127.0.0.1 and points `config` at it, unless an RPC upstream is
/// configured. The server stops when the returned value is dropped.
pub async fn start_cuebot(config: &mut Config) -> std::io::Result<Option<portico_rpc::server::RunningServer>> {
    if !config.rpc_upstreams.is_empty() {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let pool = portico_rpc::descriptors::Descriptors::opencue(&["*".into()]).pool().clone();
    let server = portico_rpc::server::serve(listener, pool, portico_rpc::demo::cuebot());
    config.rpc_upstreams = vec![portico_core::config::RpcUpstream::new(server.url())];
    Ok(Some(server))
}

/// The demo platform's routes.
pub struct DemoPlatform {
    services: Arc<Services>,
}

impl DemoPlatform {
    pub fn new(services: Arc<Services>) -> Self {
        DemoPlatform { services }
    }
}

#[derive(Deserialize)]
struct Launch {
    session_id: String,
    relay_url: String,
}

#[async_trait::async_trait]
impl RouteGroup for DemoPlatform {
    fn name(&self) -> &'static str {
        "demo-platform"
    }

    fn route_keys(&self) -> Vec<String> {
        ["ANY /demo-platform/{proxy+}"].map(String::from).into()
    }

    fn config(&self) -> &Config {
        &self.services.config
    }

    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let key = self.services.secrets.get(&self.services.config.stream_api_key_secret_id).await?;
        if web::bearer(req).ok() != Some(key.as_str()) {
            return Err(Error::Unauthorized("the demo platform wants the configured API key".into()));
        }
        match (req.method(), web::segments(req).as_slice()) {
            (&Method::GET, ["demo-platform", "functions"]) => self.functions().await,
            (&Method::POST, ["demo-platform", "functions", _, "versions", _, "sessions"]) => {
                let launch: Launch = web::json_body(req, &self.services.config)?;
                tracing::info!(session = %launch.session_id, "demo platform: launching a demo host");
                tokio::spawn(demo_host(launch));
                Ok(web::json(StatusCode::OK, &json!({})))
            }
            _ => Err(web::no_route(req)),
        }
    }
}

impl DemoPlatform {
    /// Every published app's function version, `ACTIVE`.
    async fn functions(&self) -> Result<ApiResponse, Error> {
        let catalog = Catalog::new(self.services.table.as_ref());
        let (mut functions, mut after) = (Vec::new(), None);
        loop {
            let (apps, next) = catalog.list(&AppFilter::default(), 100, after).await?;
            functions.extend(
                apps.iter()
                    .map(|a| json!({"id": a.function_id, "versionId": a.function_version_id, "status": "ACTIVE"})),
            );
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        Ok(web::json(StatusCode::OK, &json!({ "functions": functions })))
    }
}

/// Joins the relay as the host and echoes signals until the session ends.
async fn demo_host(launch: Launch) {
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(launch.relay_url.as_str()).await else {
        tracing::warn!(session = %launch.session_id, "demo host could not reach the relay");
        return;
    };
    if ws.send(Message::text(json!({"type": "hello"}).to_string())).await.is_err() {
        return;
    }
    while let Some(Ok(frame)) = ws.next().await {
        let Message::Text(text) = frame else { continue };
        let Ok(message) = serde_json::from_str::<Value>(&text) else { continue };
        match message["type"].as_str() {
            Some("signal") => {
                let echo = json!({"type": "signal", "data": {"echo": message["data"]}});
                if ws.send(Message::text(echo.to_string())).await.is_err() {
                    break;
                }
            }
            Some("session_ended") => break,
            _ => {}
        }
    }
    tracing::info!(session = %launch.session_id, "demo host left");
}
