//! The `apps` Lambda function: configuration and clients built once, then the route group.

use std::sync::Arc;

use portico_apps::AppsApi;
use portico_core::{Config, Services, lambda};
use portico_streaming::AppStatuses;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_tracing();
    // Start-up failures show their detail (never a secret value); requests never do.
    let services = Services::from_config(Config::load()?).await.map_err(|e| format!("start-up failed: {e:?}"))?;
    let statuses = AppStatuses::from_services(&services);
    lambda::run(AppsApi::routes(Arc::new(services), statuses)).await
}
