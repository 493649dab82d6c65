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

/// Fresh host tickets for sessions a bridge takes up after another bridge left them (its task
/// died): the first bridge's ticket is used up. Needs the table, so bridges that have it (the
/// bridge service, the emulator's) resume sessions; others end them.
#[derive(Clone)]
pub struct HostTickets {
    pub table: Arc<dyn portico_core::store::Table>,
    pub config: portico_core::Config,
}

impl HostTickets {
    /// A fresh host ticket for session `id`, if it is live and has no host. 1 read (+ 1 write).
    async fn fresh(&self, id: &str) -> Result<Option<String>, Error> {
        let sessions = crate::Sessions {
            table: self.table.as_ref(),
            pusher: &crate::clients::NoPusher,
            config: &self.config,
            nvcf: None,
        };
        let (session, _) = sessions.get(id).await?;
        if session.state == crate::SessionState::Stopped || session.host_conn.is_some() {
            return Ok(None);
        }
        sessions.ticket(id, crate::Side::Host).await.map(Some)
    }
}

/// Carries `job` to its end: NVCF's socket and the relay's, frames copied both ways; then, unless
/// the bridge was stopped from outside (its task killed: another bridge takes the session up,
/// with a ticket from `tickets`), the relay is told to end the session and NVCF's session ends.
pub async fn carry(signaling: &NvcfSignaling, tickets: Option<&HostTickets>, job: &BridgeJob) -> BridgeEnd {
    let end = carry_frames(signaling, tickets, job).await;
    if let Err(e) = signaling.sign_out(&job.function_id, &job.function_version_id, &job.nvcf_request_id).await {
        tracing::warn!(session = %job.session_id, error = %e, "NVCF's session could not be ended");
    }
    tracing::info!(session = %job.session_id, end = ?end, "bridge ended");
    end
}

type RelaySocket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Joins the relay as the session's host: with the job's ticket, or, when that is used up (the
/// session taken up after its bridge died), with a fresh one.
async fn join_relay(tickets: Option<&HostTickets>, job: &BridgeJob) -> Result<RelaySocket, String> {
    let mut url = job.relay_url.clone();
    for attempt in 0..2 {
        // Signals are small and interactive: no Nagle delay on either socket.
        let connecting = tokio_tungstenite::connect_async_with_config(url.as_str(), None, true);
        match tokio::time::timeout(Duration::from_secs(10), connecting).await {
            Ok(Ok((socket, _))) => return Ok(socket),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(r)))
                if r.status() == http::StatusCode::UNAUTHORIZED && attempt == 0 =>
            {
                let fresh = match tickets {
                    Some(tickets) => {
                        tickets.fresh(&job.session_id).await.map_err(|e| format!("a fresh ticket: {e}"))?
                    }
                    None => None,
                };
                let ticket = fresh.ok_or("the host's ticket is used and the session cannot be taken up")?;
                let base = job.relay_url.split('?').next().unwrap_or_default();
                url = format!("{base}?ticket={ticket}");
                tracing::info!(session = %job.session_id, "taking up a session another bridge left");
            }
            Ok(Err(e)) => return Err(format!("the relay: {e}")),
            Err(_) => return Err("the relay did not answer in time".into()),
        }
    }
    Err("the relay refused the host".into())
}

async fn carry_frames(signaling: &NvcfSignaling, tickets: Option<&HostTickets>, job: &BridgeJob) -> BridgeEnd {
    let nvcf = match signaling.connect(&job.function_id, &job.function_version_id, &job.nvcf_request_id, "", &[]).await
    {
        Ok(socket) => socket,
        Err(e) => return BridgeEnd::Failed(format!("NVCF: {e}")),
    };
    let relay = match join_relay(tickets, job).await {
        Ok(socket) => socket,
        Err(e) => return BridgeEnd::Failed(e),
    };
    let (mut to_nvcf, mut from_nvcf) = nvcf.split();
    let (mut to_relay, mut from_relay) = relay.split();
    // Resumable: should this bridge's task die, the relay waits for another to take it up.
    let hello = json!({"type": "hello", "resumable": true}).to_string();
    if to_relay.send(Message::text(hello)).await.is_err() {
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
    // Ending for good: the relay ends the session (a host that just goes is waited for).
    let reason = match &end {
        BridgeEnd::Deadline => Some("max_duration"),
        BridgeEnd::NvcfClosed(..) | BridgeEnd::Failed(_) => Some("host_left"),
        BridgeEnd::SessionEnded(_) | BridgeEnd::RelayClosed => None,
    };
    if let Some(reason) = reason {
        let _ = to_relay.send(Message::text(json!({"type": "leave", "reason": reason}).to_string())).await;
    }
    let _ = to_relay.send(Message::Close(None)).await;
    end
}

/// Bridges run as tasks of this process (the emulator, the tests): each job is carried at once.
pub struct LocalBridges {
    signaling: NvcfSignaling,
    tickets: Option<HostTickets>,
}

impl LocalBridges {
    pub fn new(signaling: NvcfSignaling, tickets: Option<HostTickets>) -> LocalBridges {
        LocalBridges { signaling, tickets }
    }
}

#[async_trait::async_trait]
impl BridgeQueue for LocalBridges {
    async fn enqueue(&self, job: BridgeJob) -> Result<(), Error> {
        let (signaling, tickets) = (self.signaling.clone(), self.tickets.clone());
        tokio::spawn(async move { carry(&signaling, tickets.as_ref(), &job).await });
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
