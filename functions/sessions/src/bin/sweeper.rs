//! The `sweeper` Lambda function, run on a schedule: ends sessions whose host never came,
//! that idled too long, or that reached `session_ttl`.

use std::sync::Arc;

use portico_core::lambda;
use portico_sessions::RelayApi;
use portico_streaming::Streaming;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let relay = |services: Arc<_>| {
        let streaming = Arc::new(Streaming::from_services(&services));
        RelayApi::new(services, streaming)
    };
    lambda::run_scheduled("ended", relay, |relay| async move { relay.sweep().await }).await
}
