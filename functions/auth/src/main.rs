//! The `auth` Lambda function: configuration and clients built once, then the route group.

use std::sync::Arc;

use portico_auth::AuthApi;
use portico_core::lambda;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = lambda::services().await?;
    lambda::run(AuthApi::routes(Arc::new(services))).await
}
