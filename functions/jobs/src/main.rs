//! The `jobs` Lambda function (REST): configuration and clients built once, then the routes.

use std::sync::Arc;

use portico_core::{Config, Services, lambda};
use portico_jobs::JobClients;
use portico_jobs_api::JobsApi;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_tracing();
    let services = Services::from_config(Config::load()?).await.map_err(|e| format!("start-up failed: {e:?}"))?;
    let clients = Arc::new(JobClients::from_services(&services));
    lambda::run(JobsApi::routes(Arc::new(services), clients)).await
}
