//! The `sessions` Lambda function (REST): configuration and clients built once, then the routes.

use std::sync::Arc;

use portico_core::{Config, Services, lambda};
use portico_sessions::SessionsApi;
use portico_streaming::Streaming;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_tracing();
    // Start-up failures show their detail (never a secret value); requests never do.
    let services = Services::from_config(Config::load()?).await.map_err(|e| format!("start-up failed: {e:?}"))?;
    let streaming = Arc::new(Streaming::from_services(&services));
    lambda::run(SessionsApi::routes(Arc::new(services), streaming)).await
}
