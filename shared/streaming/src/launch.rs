//! Asking an app's streaming function to join a session (the Omniverse portal sample's NVCF call): an HTTPS
//! request with the API key held server-side, in Secrets Manager. The key goes in the
//! `Authorization` header only: never in a response, an error message or a log line.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde::Serialize;

use portico_core::outbound::Outbound;
use portico_core::secrets::Secrets;
use portico_core::{Config, Error};

/// What the streaming function needs to join.
#[derive(Clone, Debug, Serialize)]
pub struct LaunchRequest {
    pub session_id: String,
    pub function_id: String,
    pub function_version_id: String,
    /// The WebSocket URL the host connects to, with `?ticket=`.
    pub relay_url: String,
    /// The host's single-use ticket.
    pub ticket: String,
}

#[async_trait::async_trait]
pub trait StreamLauncher: Send + Sync {
    async fn launch(&self, request: &LaunchRequest) -> Result<(), Error>;
}

/// `POST {stream_launch_url}/{function_id}/versions/{function_version_id}/sessions` with
/// `Authorization: Bearer <API key>` and JSON `{"session_id", "relay_url", "ticket"}`.
/// Unreachable or answering 5xx: 503 (`unavailable`, as before a launch is attempted); no
/// answer within `stream_launch_timeout_ms`: 504 (`upstream_timeout`); another refusal: 502
/// (`upstream_failed`). The session then ends at once and its quota is given back.
pub struct HttpsLauncher {
    base_url: String,
    key_secret_id: String,
    secrets: Arc<dyn Secrets>,
    http: Outbound,
    timeout: Duration,
}

impl HttpsLauncher {
    pub fn new(config: &Config, base_url: String, secrets: Arc<dyn Secrets>, http: Outbound) -> Self {
        HttpsLauncher {
            base_url,
            key_secret_id: config.stream_api_key_secret_id.clone(),
            secrets,
            http,
            timeout: Duration::from_millis(config.stream_launch_timeout_ms),
        }
    }
}

#[async_trait::async_trait]
impl StreamLauncher for HttpsLauncher {
    #[tracing::instrument(name = "streaming_platform", skip_all, fields(session = %request.session_id))]
    async fn launch(&self, request: &LaunchRequest) -> Result<(), Error> {
        let key = self.secrets.get(&self.key_secret_id).await?;
        let url = format!(
            "{}/{}/versions/{}/sessions",
            self.base_url.trim_end_matches('/'),
            request.function_id,
            request.function_version_id
        );
        let body = serde_json::json!({
            "session_id": request.session_id,
            "relay_url": request.relay_url,
            "ticket": request.ticket,
        });
        let resp = self
            .http
            .client()?
            .post(&url)
            .bearer_auth(key)
            .timeout(self.timeout)
            .json(&body)
            .send()
            .await
            // reqwest's errors name the URL, never the headers.
            .map_err(|e| match e.is_timeout() {
                true => Error::Upstream {
                    status: StatusCode::GATEWAY_TIMEOUT,
                    message: format!(
                        "the streaming platform did not answer the launch within {} ms",
                        self.timeout.as_millis()
                    ),
                },
                false => Error::Unavailable(format!("streaming function launch: {}", e.without_url())),
            })?;
        let status = resp.status();
        match status.as_u16() {
            200..=299 => Ok(()),
            500..=599 => {
                Err(Error::Unavailable(format!("streaming function launch answered HTTP {}", status.as_u16())))
            }
            code => Err(Error::Upstream {
                status: StatusCode::BAD_GATEWAY,
                message: format!("the streaming platform refused the launch (HTTP {code})"),
            }),
        }
    }
}
