//! The `reconciler` Lambda function, run on a schedule: refreshes every unfinished job from
//! the workflow engine, so finished ones release their quota even when nobody polls.

use portico_core::lambda;
use portico_jobs::JobsApi;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run_scheduled("finished", |services| async move { JobsApi::new(services).reconcile().await }).await
}
