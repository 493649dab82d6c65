//! The `bridge` service: the one part of Portico that is not a Lambda function, because a stream
//! needs NVCF's signaling WebSocket held for hours. It runs on ECS Fargate (infra/template.yaml)
//! and does two things:
//!
//! - takes native sessions from the SQS queue `bridge_queue_url` as it has room
//!   (`bridge_capacity` per task) and carries each until it ends, NVCF's socket to the relay
//!   (`portico_streaming::bridge_queue`);
//! - serves the streaming portal's signaling sockets on `bridge_port`, behind the load balancer
//!   CloudFront sends that path's upgrades to (`portico_streaming::direct`): it checks the
//!   caller's token and keeps the session's record, so it reads the table and the token keys.

use std::sync::Arc;

use portico_core::{Config, Services};
use portico_streaming::bridge::HostTickets;
use portico_streaming::bridge_queue::{TaskProtection, serve_queue};
use portico_streaming::direct::{DirectStreams, serve};
use portico_streaming::nvcf_signaling;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    portico_core::lambda::init_tracing();
    let config = Config::load()?;
    let (queue_url, port, capacity) = (config.bridge_queue_url.clone(), config.bridge_port, config.bridge_capacity);
    let services = Arc::new(Services::from_config(config).await?);
    let signaling = nvcf_signaling(&services)
        .ok_or("the bridge needs nvcf_signaling_endpoint (PORTICO_NVCF_SIGNALING_ENDPOINT)")?;
    if queue_url.is_none() && port == 0 {
        return Err("the bridge needs bridge_queue_url, bridge_port or both".into());
    }
    // On ECS the agent's endpoint is in the task's environment: scale-in spares a task while it
    // carries anything (queue sessions and the portal's sockets alike).
    let protection = TaskProtection::new(std::env::var("ECS_AGENT_URI").ok());
    let streams = DirectStreams::new(Arc::clone(&services), signaling.clone()).with_protection(protection.clone());
    let streams = Arc::new(streams);
    let sockets = async {
        if port == 0 {
            return std::future::pending().await;
        }
        match tokio::net::TcpListener::bind(("0.0.0.0", port)).await {
            Ok(listener) => {
                tracing::info!(port, "bridge serving the portal's signaling sockets");
                serve(listener, Arc::clone(&streams)).await;
            }
            Err(e) => tracing::error!(error = %e, port, "the portal's sockets cannot be served"),
        }
    };
    let queue = async {
        let (Some(queue_url), Some(aws)) = (queue_url, services.aws.as_ref()) else {
            return std::future::pending().await;
        };
        tracing::info!(capacity, "bridge taking sessions from its queue");
        // With the table, a session whose bridge died elsewhere is taken up here.
        let tickets = HostTickets::new(Arc::clone(&services.table), services.config.clone());
        let client = aws_sdk_sqs::Client::new(aws);
        serve_queue(client, queue_url, signaling.clone(), Some(tickets), capacity as usize, protection.clone()).await;
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        () = sockets => {}
        () = queue => {}
        // ECS stops a task with SIGTERM (and kills it 30 s later): the portal's sockets are let
        // go and closed (1001; their clients reconnect to another task); the queue's sessions
        // are taken up by other tasks once their messages show again.
        _ = terminate.recv() => {
            tracing::info!("bridge stopping");
            streams.stop();
            // Each socket lets its session go, then closes; ECS waits 30 s before it kills.
            let waiting = std::time::Instant::now();
            while streams.active() > 0 && waiting.elapsed() < std::time::Duration::from_secs(25) {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    Ok(())
}
