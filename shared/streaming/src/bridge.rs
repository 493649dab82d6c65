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
    /// The session ended (its reason: `stopped_by_owner`, `idle_timeout`, ...).
    SessionEnded(String),
    /// The session's maximum length passed.
    Deadline,
    /// A side could not be reached or refused (never naming the key).
    Failed(String),
    /// Another bridge is the session's host: this one took up a job that is still carried (or
    /// whose bridge the relay has not yet seen go) and leaves it alone; the job shows again.
    NotHost,
}

/// Hands sessions to bridges.
#[async_trait::async_trait]
pub trait BridgeQueue: Send + Sync {
    async fn enqueue(&self, job: BridgeJob) -> Result<(), Error>;
}

/// Fresh host tickets for sessions a bridge takes up: after another bridge left them (its task
/// died) or when API Gateway closed its own socket (2 h at most): a ticket serves once. Needs
/// the table, so bridges that have it (the bridge service, the emulator's) resume sessions;
/// others end them.
#[derive(Clone)]
pub struct HostTickets {
    table: Arc<dyn portico_core::store::Table>,
    config: portico_core::Config,
    /// How long a bridge taking a session up waits for the relay to see a last host go.
    patience: Duration,
}

/// What a bridge finds when it would take a session up.
enum Taking {
    Ticket(String),
    /// The session is over.
    Ended,
    /// Another host holds it.
    HostPresent,
}

impl HostTickets {
    pub fn new(table: Arc<dyn portico_core::store::Table>, config: portico_core::Config) -> HostTickets {
        HostTickets { table, config, patience: TAKE_UP_PATIENCE }
    }

    /// The same, waiting `patience` at most for another host to go.
    pub fn with_patience(mut self, patience: Duration) -> HostTickets {
        self.patience = patience;
        self
    }

    fn sessions(&self) -> crate::Sessions<'_> {
        crate::Sessions {
            table: self.table.as_ref(),
            pusher: &crate::clients::NoPusher,
            config: &self.config,
            nvcf: None,
        }
    }

    /// A fresh host ticket for session `id`, if it is live and has no host. 1 read (+ 1 write).
    async fn take(&self, id: &str) -> Result<Taking, Error> {
        let sessions = self.sessions();
        let (session, _) = match sessions.get(id).await {
            Ok(found) => found,
            Err(Error::NotFound(_)) => return Ok(Taking::Ended),
            Err(e) => return Err(e),
        };
        if session.state == crate::SessionState::Stopped {
            return Ok(Taking::Ended);
        }
        if session.host_conn.is_some() {
            return Ok(Taking::HostPresent);
        }
        sessions.ticket(id, crate::Side::Host).await.map(Taking::Ticket)
    }
}

/// How often a carrying bridge speaks to the relay: API Gateway closes a connection idle for
/// 10 minutes.
const RELAY_KEEPALIVE: Duration = Duration::from_secs(240);
/// How long a bridge taking a session up waits for the relay to see the last host go.
const TAKE_UP_PATIENCE: Duration = Duration::from_secs(20);
/// Joins of the relay a bridge tries (each with a fresh ticket after the first) before it gives up.
const MAX_JOIN_ATTEMPTS: usize = 40;

/// Carries `job` to its end: the relay's socket (as the session's host) and NVCF's, frames
/// copied both ways, the relay joined again when API Gateway closes its socket; then NVCF's
/// session ends, unless another bridge is the session's host. A bridge whose task is killed
/// ends nothing: the relay waits for another to take the session up.
pub async fn carry(signaling: &NvcfSignaling, tickets: Option<&HostTickets>, job: &BridgeJob) -> BridgeEnd {
    let end = carry_frames(signaling, tickets, job).await;
    if end != BridgeEnd::NotHost
        && let Err(e) = signaling.sign_out(&job.function_id, &job.function_version_id, &job.nvcf_request_id).await
    {
        tracing::warn!(session = %job.session_id, error = %e, "NVCF's session could not be ended");
    }
    tracing::info!(session = %job.session_id, end = ?end, "bridge ended");
    end
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Joins the relay as the session's host and says hello (resumable: should this bridge's task
/// die, the relay waits for another). With `url` (the job's ticket) first; when there is none
/// or it is used up, with a fresh ticket, waiting a while for the relay to see a last host go.
async fn join_relay(tickets: Option<&HostTickets>, job: &BridgeJob, url: Option<&str>) -> Result<Socket, BridgeEnd> {
    let mut url = url.map(str::to_owned);
    let waited = tokio::time::Instant::now();
    for _ in 0..MAX_JOIN_ATTEMPTS {
        if let Some(at) = url.take() {
            // Signals are small and interactive: no Nagle delay on either socket.
            let connecting = tokio_tungstenite::connect_async_with_config(at.as_str(), None, true);
            match tokio::time::timeout(Duration::from_secs(10), connecting).await {
                Ok(Ok((mut socket, _))) => match hello(&mut socket).await {
                    Ok(true) => return Ok(socket),
                    Ok(false) => {} // another host is there: wait, as below
                    Err(end) => return Err(end),
                },
                // A used ticket (401), or another host joined in between (409): take it up anew.
                Ok(Err(tokio_tungstenite::tungstenite::Error::Http(r)))
                    if matches!(r.status(), http::StatusCode::UNAUTHORIZED | http::StatusCode::CONFLICT) => {}
                Ok(Err(e)) => return Err(BridgeEnd::Failed(format!("the relay: {e}"))),
                Err(_) => return Err(BridgeEnd::Failed("the relay did not answer in time".into())),
            }
        }
        let Some(tickets) = tickets else {
            return Err(BridgeEnd::Failed("the host's ticket is used and this bridge cannot take another".into()));
        };
        match tickets.take(&job.session_id).await {
            Ok(Taking::Ticket(ticket)) => {
                let base = job.relay_url.split('?').next().unwrap_or_default();
                url = Some(format!("{base}?ticket={ticket}"));
                tracing::info!(session = %job.session_id, "joining the relay with a fresh host ticket");
            }
            Ok(Taking::Ended) => return Err(BridgeEnd::SessionEnded("ended".into())),
            Ok(Taking::HostPresent) if waited.elapsed() < tickets.patience => {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok(Taking::HostPresent) => return Err(BridgeEnd::NotHost),
            Err(e) => return Err(BridgeEnd::Failed(format!("a fresh host ticket: {e}"))),
        }
    }
    Err(BridgeEnd::Failed("the relay kept refusing the host".into()))
}

/// A bridge that could not join as the host: if another bridge is the host, it stands aside
/// (NVCF's session is that bridge's); if the session is over, so be it; else it failed.
async fn never_host(tickets: Option<&HostTickets>, job: &BridgeJob, end: BridgeEnd) -> BridgeEnd {
    let BridgeEnd::Failed(_) = end else { return end };
    let Some(tickets) = tickets else { return end };
    match tickets.sessions().get(&job.session_id).await {
        Ok((s, _)) if s.state == crate::SessionState::Stopped => BridgeEnd::SessionEnded("ended".into()),
        Ok((s, _)) if s.host_conn.is_some() => BridgeEnd::NotHost,
        _ => end,
    }
}

/// The host's hello, and the relay's word on it: welcomed (true), or another host is there
/// (false).
async fn hello(socket: &mut Socket) -> Result<bool, BridgeEnd> {
    let hello = json!({"type": "hello", "resumable": true}).to_string();
    if socket.send(Message::text(hello)).await.is_err() {
        return Err(BridgeEnd::Failed("the relay closed before the hello".into()));
    }
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next()).await;
        let Ok(Some(Ok(frame))) = frame else {
            return Err(BridgeEnd::Failed("the relay did not welcome the host".into()));
        };
        let Message::Text(text) = frame else { continue };
        let notice: Value = serde_json::from_str(&text).unwrap_or_default();
        match (notice["type"].as_str(), notice["code"].as_str()) {
            (Some("welcome"), _) => return Ok(true),
            (Some("error"), Some("already_connected")) => return Ok(false),
            (Some("error"), Some("session_ended")) => return Err(BridgeEnd::SessionEnded("ended".into())),
            (Some("error"), _) => return Err(BridgeEnd::Failed(format!("the relay refused the host: {text}"))),
            _ => {}
        }
    }
}

async fn carry_frames(signaling: &NvcfSignaling, tickets: Option<&HostTickets>, job: &BridgeJob) -> BridgeEnd {
    let mut relay = match join_relay(tickets, job, Some(&job.relay_url)).await {
        Ok(socket) => socket,
        Err(end) => return never_host(tickets, job, end).await,
    };
    let connected = signaling.connect(&job.function_id, &job.function_version_id, &job.nvcf_request_id, "", &[]).await;
    let mut nvcf = match connected {
        Ok(socket) => socket,
        Err(e) => return leave(&mut relay, BridgeEnd::Failed(format!("NVCF: {e}"))).await,
    };
    let deadline = tokio::time::sleep(Duration::from_secs(job.max_seconds));
    tokio::pin!(deadline);
    let mut keepalive = tokio::time::interval(RELAY_KEEPALIVE);
    keepalive.tick().await;
    let end = loop {
        tokio::select! {
            _ = &mut deadline => break BridgeEnd::Deadline,
            _ = keepalive.tick() => {
                let _ = relay.send(Message::text(json!({"type": "ping"}).to_string())).await;
            }
            frame = nvcf.next() => {
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
                let signal = Message::text(json!({"type": "signal", "data": data}).to_string());
                if relay.send(signal.clone()).await.is_err() {
                    // API Gateway closed the host's socket: joined again, the signal goes then.
                    relay = match join_relay(tickets, job, None).await {
                        Ok(socket) => socket,
                        Err(end) => break end,
                    };
                    let _ = relay.send(signal).await;
                }
            }
            frame = relay.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => {
                        // API Gateway closes a connection after 2 hours: the session goes on.
                        relay = match join_relay(tickets, job, None).await {
                            Ok(socket) => socket,
                            Err(end) => break end,
                        };
                        continue;
                    }
                    Some(Ok(_)) => continue,
                };
                let Ok(envelope) = serde_json::from_str::<Value>(&text) else { continue };
                match envelope["type"].as_str() {
                    Some("signal") => {
                        let out = match &envelope["data"] {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        if nvcf.send(Message::text(out)).await.is_err() {
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
    let _ = nvcf.send(Message::Close(None)).await;
    match end {
        BridgeEnd::SessionEnded(_) | BridgeEnd::NotHost => {
            let _ = relay.send(Message::Close(None)).await;
            end
        }
        _ => leave(&mut relay, end).await,
    }
}

/// Tells the relay this host is done for good (so the session ends rather than waits for
/// another bridge), and waits (a little) for the relay to end it before closing: a close
/// that overtook the `leave` would read as a bridge gone.
async fn leave(relay: &mut Socket, end: BridgeEnd) -> BridgeEnd {
    let reason = if end == BridgeEnd::Deadline { "max_duration" } else { "host_left" };
    if relay.send(Message::text(json!({"type": "leave", "reason": reason}).to_string())).await.is_ok() {
        let ended = async {
            while let Some(Ok(frame)) = relay.next().await {
                if let Message::Text(text) = frame
                    && serde_json::from_str::<Value>(&text).is_ok_and(|v| v["type"] == "session_ended")
                {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), ended).await;
    }
    let _ = relay.send(Message::Close(None)).await;
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
