//! The `bridge` service: the one part of Portico that is not a Lambda function, because a stream
//! needs NVCF's signaling WebSocket held for hours. It runs on ECS Fargate (infra/template.yaml),
//! takes sessions from the SQS queue `bridge_queue_url` as it has room (`bridge_capacity` per
//! task) and carries each until it ends (`portico_streaming::bridge_queue`). It reads only the
//! API key, from Secrets Manager, with the task role's rights alone: no table, no signing keys.

use std::sync::Arc;
use std::time::Duration;

use portico_core::Config;
use portico_core::config::SecretsKind;
use portico_core::outbound::Outbound;
use portico_core::secrets::{LocalSecrets, Secrets, SecretsManager};
use portico_streaming::bridge_queue::{TaskProtection, serve_queue};
use portico_streaming::nvcf::NvcfSignaling;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    portico_core::lambda::init_tracing();
    let config = Config::load()?;
    let queue_url =
        config.bridge_queue_url.clone().ok_or("the bridge needs bridge_queue_url (PORTICO_BRIDGE_QUEUE_URL)")?;
    let endpoint = config
        .nvcf_signaling_endpoint
        .clone()
        .ok_or("the bridge needs nvcf_signaling_endpoint (PORTICO_NVCF_SIGNALING_ENDPOINT)")?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secrets: Arc<dyn Secrets> = match config.secrets {
        SecretsKind::Secretsmanager => {
            Arc::new(SecretsManager::new(SecretsManager::client(&aws), Duration::from_secs(config.secrets_cache_ttl)))
        }
        SecretsKind::Local => Arc::new(LocalSecrets::new(config.local_secrets.clone())),
    };
    let signaling = NvcfSignaling::new(&config, endpoint, secrets, Outbound::default());
    let capacity = config.bridge_capacity as usize;
    // On ECS the agent's endpoint is in the task's environment: scale-in spares busy tasks.
    let protection = TaskProtection::new(std::env::var("ECS_AGENT_URI").ok());
    tracing::info!(capacity, "bridge taking sessions from its queue");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        () = serve_queue(aws_sdk_sqs::Client::new(&aws), queue_url, signaling, capacity, protection) => {}
        // ECS stops a task with SIGTERM: what it carries ends with it (the relay tells the clients).
        _ = terminate.recv() => tracing::info!("bridge stopping"),
    }
    Ok(())
}
