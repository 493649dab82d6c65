//! The `rpc` Lambda function: configuration, identity and the gateway (descriptors, channels)
//! built once per cold start, then the route group.

use std::sync::Arc;

use portico_core::{Config, Services, lambda};
use portico_rpc::gateway::Gateway;
use portico_rpc_api::RpcApi;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_tracing();
    let config = Config::load()?;
    let gateway = Gateway::new(&config).await.map_err(|e| format!("start-up failed: {e}"))?;
    let services = Services::from_config(config).await.map_err(|e| format!("start-up failed: {e:?}"))?;
    lambda::run(RpcApi::routes(Arc::new(services), Arc::new(gateway))).await
}
