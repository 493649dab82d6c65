//! The `desktops-sweeper` Lambda function, run on a schedule: follows every live desktop, so
//! one past its end or whose Pod died or was evicted ends and gives back its quota even if
//! nobody reads it.

use std::sync::Arc;

use portico_core::lambda;
use portico_desktops::DesktopClients;
use portico_desktops_api::DesktopsApi;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let api = |services: Arc<_>| {
        let clients = Arc::new(DesktopClients::from_services(&services));
        DesktopsApi::new(services, clients)
    };
    lambda::run_scheduled("ended", api, |api| async move { api.sweep().await }).await
}
