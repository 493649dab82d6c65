//! The `reconciler` Lambda function, run on a schedule: refreshes every unfinished job from
//! the workflow engine, so finished ones release their quota even when nobody polls.

use std::sync::Arc;

use portico_core::lambda;
use portico_jobs::JobClients;
use portico_jobs_api::JobsApi;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let jobs = |services: Arc<_>| {
        let clients = Arc::new(JobClients::from_services(&services));
        JobsApi::new(services, clients)
    };
    lambda::run_scheduled("finished", jobs, |jobs| async move { jobs.reconcile().await }).await
}
