//! Sending to WebSocket connections: API Gateway's Management API (`PostToConnection`,
//! `DeleteConnection`) behind [`ConnectionPusher`], so the relay runs the same on AWS and in
//! the emulator.

use std::time::Duration;

use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_apigatewaymanagement::primitives::Blob;

/// Why a message could not be delivered.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The connection is gone (HTTP 410): forget it.
    #[error("connection gone")]
    Gone,
    #[error("push failed: {0}")]
    Failed(String),
}

/// Delivers text to, and closes, WebSocket connections by id.
#[async_trait::async_trait]
pub trait ConnectionPusher: Send + Sync {
    async fn post(&self, connection_id: &str, data: &str) -> Result<(), PushError>;
    async fn close(&self, connection_id: &str) -> Result<(), PushError>;
}

/// The API Gateway Management API of one WebSocket stage
/// (`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`).
pub struct ApiGatewayPusher {
    client: Client,
}

impl ApiGatewayPusher {
    pub fn new(aws: &aws_config::SdkConfig, endpoint: &str) -> Self {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(aws).endpoint_url(endpoint).build();
        ApiGatewayPusher { client: Client::from_conf(config) }
    }

    pub fn from_client(client: Client) -> Self {
        ApiGatewayPusher { client }
    }
}

fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    err: aws_sdk_apigatewaymanagement::error::SdkError<E, R>,
) -> (PushError, bool) {
    match err.code() {
        Some("GoneException") => (PushError::Gone, false),
        // 429: retry with backoff.
        Some("LimitExceededException" | "TooManyRequestsException") => {
            (PushError::Failed("throttled by API Gateway".into()), true)
        }
        _ => (PushError::Failed(DisplayErrorContext(err).to_string()), false),
    }
}

#[async_trait::async_trait]
impl ConnectionPusher for ApiGatewayPusher {
    async fn post(&self, connection_id: &str, data: &str) -> Result<(), PushError> {
        let mut delay = Duration::from_millis(50);
        for attempt in 0..3 {
            let sent = self
                .client
                .post_to_connection()
                .connection_id(connection_id)
                .data(Blob::new(data.as_bytes()))
                .send()
                .await;
            match sent.map_err(classify) {
                Ok(_) => return Ok(()),
                Err((_, true)) if attempt < 2 => {
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                }
                Err((e, _)) => return Err(e),
            }
        }
        Err(PushError::Failed("throttled by API Gateway".into()))
    }

    async fn close(&self, connection_id: &str) -> Result<(), PushError> {
        match self.client.delete_connection().connection_id(connection_id).send().await.map_err(classify) {
            Ok(_) | Err((PushError::Gone, _)) => Ok(()),
            Err((e, _)) => Err(e),
        }
    }
}
