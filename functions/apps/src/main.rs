//! The `apps` Lambda function: configuration and clients built once, then the route group.

use std::sync::Arc;

use portico_apps::AppsApi;
use portico_core::lambda;
use portico_streaming::AppStatuses;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = lambda::services().await?;
    let statuses = AppStatuses::from_services(&services);
    lambda::run(AppsApi::routes(Arc::new(services), statuses)).await
}
