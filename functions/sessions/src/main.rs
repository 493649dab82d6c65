//! The `sessions` Lambda function (REST): configuration and clients built once, then the routes.

use std::sync::Arc;

use portico_core::lambda;
use portico_sessions::SessionsApi;
use portico_streaming::Streaming;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = lambda::services().await?;
    let streaming = Arc::new(Streaming::from_services(&services));
    lambda::run(SessionsApi::routes(Arc::new(services), streaming)).await
}
