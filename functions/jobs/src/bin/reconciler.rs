//! The `reconciler` Lambda function, run on a schedule: refreshes every unfinished job from
//! the workflow engine, so finished ones release their quota even when nobody polls.

use std::sync::Arc;

use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use portico_core::{Config, Services, lambda};
use portico_jobs::JobsApi;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_tracing();
    let services = Services::from_config(Config::load()?).await.map_err(|e| format!("start-up failed: {e:?}"))?;
    let jobs = Arc::new(JobsApi::new(Arc::new(services)));
    lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| {
        let jobs = Arc::clone(&jobs);
        async move {
            let finished = jobs.reconcile().await.map_err(|e| format!("reconcile failed: {e:?}"))?;
            Ok::<_, lambda_http::Error>(serde_json::json!({ "finished": finished }))
        }
    }))
    .await
}
