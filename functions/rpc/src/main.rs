//! The `rpc` Lambda function: configuration, identity and the gateway (descriptors, channels)
//! built once per cold start, then the route group.

use std::sync::Arc;

use portico_core::lambda;
use portico_rpc::gateway::Gateway;
use portico_rpc_api::RpcApi;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = lambda::services().await?;
    let gateway = Gateway::new(&services.config).await.map_err(|e| format!("start-up failed: {e}"))?;
    lambda::run(RpcApi::routes(Arc::new(services), Arc::new(gateway))).await
}
