//! The `sweeper` Lambda function, run on a schedule: ends sessions whose host never came,
//! that idled too long, or that reached `session_ttl`.

use std::sync::Arc;

use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use portico_core::{Config, Services, lambda};
use portico_sessions::RelayApi;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_tracing();
    let services = Services::from_config(Config::load()?).await.map_err(|e| format!("start-up failed: {e:?}"))?;
    let relay = Arc::new(RelayApi::new(Arc::new(services)));
    lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| {
        let relay = Arc::clone(&relay);
        async move {
            let ended = relay.sweep().await.map_err(|e| format!("sweep failed: {e:?}"))?;
            Ok::<_, lambda_http::Error>(serde_json::json!({ "ended": ended }))
        }
    }))
    .await
}
