//! The `console` Lambda function: configuration and clients built once, then the pages.

use std::sync::Arc;

use portico_console::{Console, Domains};
use portico_core::lambda;
use portico_desktops::DesktopClients;
use portico_jobs::JobClients;
use portico_streaming::Streaming;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = lambda::services().await?;
    let streaming = Arc::new(Streaming::from_services(&services));
    let jobs = Arc::new(JobClients::from_services(&services));
    let desktops = Arc::new(DesktopClients::from_services(&services));
    lambda::run(Console::new(Arc::new(services), Domains { streaming, jobs, desktops })).await
}
