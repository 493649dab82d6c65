//! The `desktops` Lambda function: configuration and clients built once, then the routes.

use std::sync::Arc;

use portico_core::lambda;
use portico_desktops::DesktopClients;
use portico_desktops_api::DesktopsApi;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = lambda::services().await?;
    let clients = Arc::new(DesktopClients::from_services(&services));
    lambda::run(DesktopsApi::routes(Arc::new(services), clients)).await
}
