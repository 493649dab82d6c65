//! The `sweeper` Lambda function, run on a schedule: ends sessions whose host never came,
//! that idled too long, or that reached `session_ttl`.

use portico_core::lambda;
use portico_sessions::RelayApi;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run_scheduled("ended", |services| async move { RelayApi::new(services).sweep().await }).await
}
