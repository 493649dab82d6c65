//! The bridge: the one piece of streaming that must outlive a request. For each session on
//! NVCF it holds NVCF's signaling WebSocket (opened with the key, read from the secrets here and
//! never carried in a job) and joins Portico's relay as the session's host with the host's
//! ticket, then copies frames between them until either side ends, the session is stopped, or
//! its maximum length passes; it then ends the NVCF session and says why.
//!
//! Frames: NVCF's text frame `t` reaches the client as `{"type": "signal", "data": t}` (`t` a
//! JSON string, unchanged) and a binary one as `{"data": {"binary": "<base64>"}}`; the client's
//! signal reaches NVCF as a text frame: its `data` if a string, else `data` as JSON text.
//!
//! Where it runs: [`LocalBridges`] carries each session in a task of this process (the emulator
//! and the tests); on AWS the same [`carry`] runs in a bridge service that takes jobs from a
//! queue.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use portico_core::Error;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::launch::{LaunchRequest, StreamLauncher};
use crate::nvcf::NvcfSignaling;

/// One session for a bridge to carry. It holds no secret: the host's ticket is single-use and
/// short-lived, and the key is read by the bridge itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BridgeJob {
    pub session_id: String,
    pub function_id: String,
    pub function_version_id: String,
    /// NVCF's session (`nvcf-request-id`).
    pub nvcf_request_id: String,
    /// The relay's URL with the host's ticket.
    pub relay_url: String,
    /// Seconds the bridge carries the session at most (its `session_ttl`).
    pub max_seconds: u64,
}

/// Why a bridge ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BridgeEnd {
    /// NVCF closed its socket (code, reason).
    NvcfClosed(u16, String),
    /// The relay ended the session (its reason: `stopped`, `ttl`, `idle`, ...).
    SessionEnded(String),
    /// The relay's socket closed without a word.
    RelayClosed,
    /// The session's maximum length passed.
    Deadline,
    /// A side could not be reached or refused (never naming the key).
    Failed(String),
}

/// Hands sessions to bridges.
#[async_trait::async_trait]
pub trait BridgeQueue: Send + Sync {
    async fn enqueue(&self, job: BridgeJob) -> Result<(), Error>;
}

/// Carries `job` to its end: NVCF's socket and the relay's, frames copied both ways; NVCF's
/// session ended after.
pub async fn carry(signaling: &NvcfSignaling, job: &BridgeJob) -> BridgeEnd {
    let end = carry_frames(signaling, job).await;
    if let Err(e) = signaling.sign_out(&job.function_id, &job.function_version_id, &job.nvcf_request_id).await {
        tracing::warn!(session = %job.session_id, error = %e, "NVCF's session could not be ended");
    }
    tracing::info!(session = %job.session_id, end = ?end, "bridge ended");
    end
}

async fn carry_frames(signaling: &NvcfSignaling, job: &BridgeJob) -> BridgeEnd {
    let nvcf = match signaling.connect(&job.function_id, &job.function_version_id, &job.nvcf_request_id, "", None).await
    {
        Ok(socket) => socket,
        Err(e) => return BridgeEnd::Failed(format!("NVCF: {e}")),
    };
    // Signals are small and interactive: no Nagle delay on either socket.
    let connecting = tokio_tungstenite::connect_async_with_config(job.relay_url.as_str(), None, true);
    let relay = match tokio::time::timeout(Duration::from_secs(10), connecting).await {
        Ok(Ok((socket, _))) => socket,
        Ok(Err(e)) => return BridgeEnd::Failed(format!("the relay: {e}")),
        Err(_) => return BridgeEnd::Failed("the relay did not answer in time".into()),
    };
    let (mut to_nvcf, mut from_nvcf) = nvcf.split();
    let (mut to_relay, mut from_relay) = relay.split();
    if to_relay.send(Message::text(json!({"type": "hello"}).to_string())).await.is_err() {
        return BridgeEnd::Failed("the relay closed before the hello".into());
    }
    let deadline = tokio::time::sleep(Duration::from_secs(job.max_seconds));
    tokio::pin!(deadline);
    let end = loop {
        tokio::select! {
            _ = &mut deadline => break BridgeEnd::Deadline,
            frame = from_nvcf.next() => {
                let data = match frame {
                    Some(Ok(Message::Text(text))) => Value::String(text.to_string()),
                    Some(Ok(Message::Binary(bytes))) => {
                        json!({"binary": base64::engine::general_purpose::STANDARD.encode(&bytes)})
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let (code, reason) = frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new()));
                        break BridgeEnd::NvcfClosed(code, reason);
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => break BridgeEnd::Failed(format!("NVCF's socket: {e}")),
                    None => break BridgeEnd::NvcfClosed(1006, String::new()),
                };
                let signal = json!({"type": "signal", "data": data}).to_string();
                if to_relay.send(Message::text(signal)).await.is_err() {
                    break BridgeEnd::RelayClosed;
                }
            }
            frame = from_relay.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => break BridgeEnd::RelayClosed,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => break BridgeEnd::Failed(format!("the relay's socket: {e}")),
                };
                let Ok(envelope) = serde_json::from_str::<Value>(&text) else { continue };
                match envelope["type"].as_str() {
                    Some("signal") => {
                        let out = match &envelope["data"] {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        if to_nvcf.send(Message::text(out)).await.is_err() {
                            break BridgeEnd::NvcfClosed(1006, String::new());
                        }
                    }
                    Some("session_ended") => {
                        break BridgeEnd::SessionEnded(envelope["reason"].as_str().unwrap_or("ended").to_owned());
                    }
                    // welcome, peer_joined, peer_left (the client may come back), pong, errors.
                    _ => {}
                }
            }
        }
    };
    let _ = to_nvcf.send(Message::Close(None)).await;
    let _ = to_relay.send(Message::Close(None)).await;
    end
}

/// Bridges run as tasks of this process (the emulator, the tests): each job is carried at once.
pub struct LocalBridges {
    signaling: NvcfSignaling,
}

impl LocalBridges {
    pub fn new(signaling: NvcfSignaling) -> LocalBridges {
        LocalBridges { signaling }
    }
}

#[async_trait::async_trait]
impl BridgeQueue for LocalBridges {
    async fn enqueue(&self, job: BridgeJob) -> Result<(), Error> {
        let signaling = self.signaling.clone();
        tokio::spawn(async move { carry(&signaling, &job).await });
        Ok(())
    }
}

/// Sessions on NVCF: NVCF's `sign_in`, then a bridge to carry the session (the host's side).
pub struct NvcfLauncher {
    pub signaling: NvcfSignaling,
    pub bridges: Arc<dyn BridgeQueue>,
    /// A bridge's longest carry (`session_ttl`).
    pub max_seconds: u64,
}

#[async_trait::async_trait]
impl StreamLauncher for NvcfLauncher {
    #[tracing::instrument(name = "streaming_platform", skip_all, fields(session = %request.session_id))]
    async fn launch(&self, request: &LaunchRequest) -> Result<(), Error> {
        let (function, version) = (&request.function_id, &request.function_version_id);
        let request_id = self.signaling.sign_in(function, version, "").await?;
        let job = BridgeJob {
            session_id: request.session_id.clone(),
            function_id: function.clone(),
            function_version_id: version.clone(),
            nvcf_request_id: request_id.clone(),
            relay_url: request.relay_url.clone(),
            max_seconds: self.max_seconds,
        };
        if let Err(e) = self.bridges.enqueue(job).await {
            // No bridge will carry it: NVCF's session ends now rather than at its idle timeout.
            let _ = self.signaling.sign_out(function, version, &request_id).await;
            return Err(e);
        }
        Ok(())
    }
}
