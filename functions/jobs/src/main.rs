//! The `jobs` Lambda function (REST): configuration and clients built once, then the routes.

use std::sync::Arc;

use portico_core::lambda;
use portico_jobs::JobClients;
use portico_jobs_api::JobsApi;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = lambda::services().await?;
    let clients = Arc::new(JobClients::from_services(&services));
    lambda::run(JobsApi::routes(Arc::new(services), clients)).await
}
