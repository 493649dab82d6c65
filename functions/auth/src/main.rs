//! The `auth` Lambda function: configuration and clients built once, then the route group.

use std::sync::Arc;

use portico_auth::AuthApi;
use portico_core::{Config, Services, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_tracing();
    // Start-up failures show their detail (never a secret value); requests never do.
    let services = Services::from_config(Config::load()?).await.map_err(|e| format!("start-up failed: {e:?}"))?;
    lambda::run(AuthApi::routes(Arc::new(services))).await
}
