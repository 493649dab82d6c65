//! The `relay` Lambda function: the WebSocket API's `$connect`, `$default`, `$disconnect`.

use std::sync::Arc;

use portico_core::lambda;
use portico_sessions::RelayApi;
use portico_streaming::Streaming;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = lambda::services().await?;
    let streaming = Arc::new(Streaming::from_services(&services));
    lambda::run_websocket(RelayApi::new(Arc::new(services), streaming)).await
}
