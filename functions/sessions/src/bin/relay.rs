//! The `relay` Lambda function: the WebSocket API's `$connect`, `$default`, `$disconnect`.

use std::sync::Arc;

use portico_core::{Config, Services, lambda};
use portico_sessions::RelayApi;
use portico_streaming::Streaming;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_tracing();
    let services = Services::from_config(Config::load()?).await.map_err(|e| format!("start-up failed: {e:?}"))?;
    let streaming = Arc::new(Streaming::from_services(&services));
    lambda::run_websocket(RelayApi::new(Arc::new(services), streaming)).await
}
