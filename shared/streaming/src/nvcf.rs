//! NVIDIA Cloud Functions' streaming signaling, as the seed portal drives it
//! (`backend/app/nvcf.py`, `routers/sessions.py`): a session starts with
//! `POST https://{signaling}/sign_in` (the API key, `Function-ID`, `Function-Version-ID`,
//! `X-NVCF-ABSORB: true`), which answers the session's id as the cookie `nvcf-request-id`;
//! its signals go over the WebSocket `wss://{signaling}/sign_in` opened with the key, both ids
//! and that cookie, which NVCF holds for the whole stream (and may speak on first); it ends
//! with `DELETE https://{signaling}/sign_in` and the cookie. The key goes in the
//! `Authorization` header only: never in a message, an answer or a log line.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use portico_core::outbound::Outbound;
use portico_core::secrets::Secrets;
use portico_core::{Config, Error};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The session cookie NVCF answers a sign-in with.
pub const REQUEST_ID_COOKIE: &str = "nvcf-request-id";

/// NVCF's signaling endpoint, with the key's place in the secrets.
#[derive(Clone)]
pub struct NvcfSignaling {
    /// `wss://grpc.nvcf.nvidia.com` (a `ws://` one for the stand-ins).
    ws_base: String,
    key_secret_id: String,
    secrets: Arc<dyn Secrets>,
    http: Outbound,
    timeout: Duration,
}

/// A WebSocket to NVCF's `/sign_in`.
pub type NvcfSocket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl NvcfSignaling {
    /// NVCF at `endpoint` (`wss://...` or `ws://...`), with `config`'s key and timeout.
    pub fn new(config: &Config, endpoint: String, secrets: Arc<dyn Secrets>, http: Outbound) -> NvcfSignaling {
        NvcfSignaling {
            ws_base: endpoint.trim_end_matches('/').to_owned(),
            key_secret_id: config.stream_api_key_secret_id.clone(),
            secrets,
            http,
            timeout: Duration::from_millis(config.stream_launch_timeout_ms),
        }
    }

    /// The endpoint as HTTP(S), as the seed turns `wss://` into `https://` for its calls.
    fn http_base(&self) -> String {
        match self.ws_base.split_once("://") {
            Some(("wss", rest)) => format!("https://{rest}"),
            Some(("ws", rest)) => format!("http://{rest}"),
            _ => self.ws_base.clone(),
        }
    }

    async fn key(&self) -> Result<String, Error> {
        self.secrets.get(&self.key_secret_id).await
    }

    /// Sends `request` as every HTTP call to NVCF goes: the key, the function version's ids,
    /// `X-NVCF-ABSORB`, within the timeout.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        function_id: &str,
        version_id: &str,
    ) -> Result<reqwest::Response, Error> {
        request
            .bearer_auth(self.key().await?)
            .header("Function-ID", function_id)
            .header("Function-Version-ID", version_id)
            .header("X-NVCF-ABSORB", "true")
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| unreachable(&e, self.timeout))
    }

    /// Starts a session of the function version: its `nvcf-request-id`. NVCF refusing: 502 (its
    /// 5xx: 503); no answer within `stream_launch_timeout_ms`: 504.
    #[tracing::instrument(name = "nvcf", skip_all, fields(op = "sign_in"))]
    pub async fn sign_in(&self, function_id: &str, version_id: &str, query: &str) -> Result<String, Error> {
        let query = if query.is_empty() { String::new() } else { format!("?{query}") };
        let request = self.http.client()?.post(format!("{}/sign_in{query}", self.http_base()));
        let response = self.send(request, function_id, version_id).await?;
        let status = response.status();
        if status.is_server_error() {
            return Err(Error::Unavailable(format!("NVCF's sign_in answered HTTP {}", status.as_u16())));
        }
        if !status.is_success() {
            return Err(bad_gateway(format!("NVCF refused the sign-in (HTTP {})", status.as_u16())));
        }
        let cookie =
            response.headers().get_all(http::header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
                v.split(';').next()?.trim().strip_prefix(&format!("{REQUEST_ID_COOKIE}=")).map(str::to_owned)
            });
        cookie.filter(|c| !c.is_empty()).ok_or_else(|| bad_gateway("NVCF's sign-in set no nvcf-request-id".into()))
    }

    /// Ends the session `request_id` (absent at NVCF: done).
    #[tracing::instrument(name = "nvcf", skip_all, fields(op = "sign_out"))]
    pub async fn sign_out(&self, function_id: &str, version_id: &str, request_id: &str) -> Result<(), Error> {
        let request = self
            .http
            .client()?
            .delete(format!("{}/sign_in", self.http_base()))
            .header(http::header::COOKIE, format!("{REQUEST_ID_COOKIE}={request_id}"));
        let response = self.send(request, function_id, version_id).await?;
        match response.status().as_u16() {
            200..=299 | 404 => Ok(()),
            status => Err(bad_gateway(format!("NVCF refused the sign-out (HTTP {status})"))),
        }
    }

    /// Opens the session's signaling WebSocket (`query` and `extra` headers: the client's, passed
    /// on: its `User-Agent`, the user's token an app needs).
    #[tracing::instrument(name = "nvcf", skip_all, fields(op = "connect"))]
    pub async fn connect(
        &self,
        function_id: &str,
        version_id: &str,
        request_id: &str,
        query: &str,
        extra: &[(http::HeaderName, &str)],
    ) -> Result<NvcfSocket, Error> {
        let query = if query.is_empty() { String::new() } else { format!("?{query}") };
        let mut request = format!("{}/sign_in{query}", self.ws_base)
            .into_client_request()
            .map_err(|e| Error::Internal(format!("NVCF's signaling URL: {e}")))?;
        let header = |value: String| {
            http::HeaderValue::from_str(&value).map_err(|_| Error::Internal("a header NVCF needs is not valid".into()))
        };
        let headers = request.headers_mut();
        headers.insert(http::header::AUTHORIZATION, header(format!("Bearer {}", self.key().await?))?);
        headers.insert("Function-ID", header(function_id.to_owned())?);
        headers.insert("Function-Version-ID", header(version_id.to_owned())?);
        headers.insert(http::header::COOKIE, header(format!("{REQUEST_ID_COOKIE}={request_id}"))?);
        for (name, value) in extra {
            if let Ok(value) = http::HeaderValue::from_str(value) {
                headers.insert(name.clone(), value);
            }
        }
        let connected =
            tokio::time::timeout(self.timeout, tokio_tungstenite::connect_async_with_config(request, None, true)).await;
        match connected {
            Err(_) => Err(Error::Upstream {
                status: StatusCode::GATEWAY_TIMEOUT,
                message: "NVCF's signaling did not answer in time".into(),
            }),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
                Err(bad_gateway(format!("NVCF refused the signaling socket (HTTP {})", response.status().as_u16())))
            }
            // Errors name no header: the key stays out.
            Ok(Err(e)) => Err(Error::Unavailable(format!("NVCF's signaling cannot be reached: {e}"))),
            Ok(Ok((socket, _))) => Ok(socket),
        }
    }
}

fn bad_gateway(message: String) -> Error {
    Error::Upstream { status: StatusCode::BAD_GATEWAY, message }
}

fn unreachable(e: &reqwest::Error, timeout: Duration) -> Error {
    if e.is_timeout() {
        Error::Upstream {
            status: StatusCode::GATEWAY_TIMEOUT,
            message: format!("NVCF did not answer within {} ms", timeout.as_millis()),
        }
    } else {
        Error::Unavailable(format!("NVCF cannot be reached: {e}"))
    }
}
