//! A portal socket's life once its handshake is done: the session taken under a lease, NVCF's
//! socket opened, frames carried both ways until an end, and the close code the portal reads.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use portico_core::Error;
use portico_core::apps::AuthenticationType;
use portico_core::store::now_epoch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{CLIENT_SILENCE, Call, DirectStreams, KEEPALIVE, LEASE_SECONDS, NUCLEUS_TOKEN, Socket, USER_TOKEN, WATCH};
use crate::{Session, SessionState, direct_session_id};

/// How a carried stream ended.
enum End {
    /// Closed by a side: the other gets the same code and reason.
    Closed(Option<CloseFrame>),
    /// Dropped without a close frame (the client reads 1006).
    Dropped,
    /// The client closed or left; NVCF's side is closed.
    ClientLeft,
    /// The session ended (its record says why): 3010.
    SessionEnded(String),
    /// Another socket holds the session now.
    TakenOver,
    /// The process stops (1001).
    Stopping,
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.to_owned().into() }))
}

/// What the portal's client reads as the reason of a 3010, from a session's end reason.
fn ended_text(reason: &str) -> String {
    match reason {
        "stopped_by_owner" => "Stopped by client.".into(),
        "stopped_by_admin" => "Terminated by a system administrator.".into(),
        "max_duration" => "Timed out.".into(),
        other => other.to_owned(),
    }
}

impl DirectStreams {
    /// The socket's life, with the task protected from scale-in meanwhile.
    pub(super) async fn stream(&self, client: Socket, call: Call) {
        self.active.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(p) = &self.protection {
            p.hold().await;
        }
        self.stream_held(client, call).await;
        if let Some(p) = &self.protection {
            p.release().await;
        }
        self.active.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// The socket's life: the session taken, NVCF's socket opened, frames carried until an end.
    async fn stream_held(&self, mut client: Socket, call: Call) {
        let Some(request_id) = call.request_id.clone() else {
            let _ = client.send(close(3000, "Session ID is not specified (missing nvcf-request-id cookie).")).await;
            return;
        };
        let id = direct_session_id(&request_id);
        let conn = format!("direct-{}", uuid::Uuid::new_v4().simple());
        let (ends_at, authentication) = match self.take(&id, &conn, &request_id, &call).await {
            Ok(Ok(taken)) => taken,
            Ok(Err(code)) => {
                let reason = match code {
                    3005 => "Client is connected already.",
                    _ => "Session with the specified ID not found.",
                };
                let _ = client.send(close(code, reason)).await;
                return;
            }
            Err(e) => {
                tracing::warn!(session = %id, error = %e, "the session could not be taken");
                let _ = client.send(close(1011, "The session cannot be read now -- try again later.")).await;
                return;
            }
        };
        let (function_id, version_id) = (&call.function_id, &call.version_id);
        let mut extra = Vec::new();
        if let Some(agent) = &call.user_agent {
            extra.push((http::header::USER_AGENT, agent.as_str()));
        }
        // What the app needs of the user, as the portal's backend passes it.
        match (authentication, &call.token, &call.nucleus) {
            (AuthenticationType::Openid, Some(token), _) => extra.push((USER_TOKEN.clone(), token.as_str())),
            (AuthenticationType::Nucleus, _, Some(token)) => extra.push((NUCLEUS_TOKEN.clone(), token.as_str())),
            _ => {}
        }
        let nvcf = self.nvcf.connect(function_id, version_id, &request_id, &call.query, &extra).await;
        let end = match nvcf {
            Ok(nvcf) => self.carry(&mut client, nvcf, &id, &conn, ends_at).await,
            Err(e @ Error::Upstream { status: StatusCode::GATEWAY_TIMEOUT, .. }) => {
                tracing::warn!(session = %id, error = %e, "NVCF's signaling did not answer");
                let reason = "Failed to connect a streaming session with a timeout -- try again later.";
                End::Closed(Some(CloseFrame { code: CloseCode::from(3008), reason: reason.into() }))
            }
            Err(e) => {
                tracing::warn!(session = %id, error = %e, "NVCF refused the signaling socket");
                End::Dropped
            }
        };
        tracing::info!(session = %id, "the portal's socket ended");
        match end {
            End::Closed(frame) => {
                let _ = client.send(Message::Close(frame)).await;
                self.let_go(&id, &conn).await;
            }
            End::Dropped | End::ClientLeft => self.let_go(&id, &conn).await,
            End::SessionEnded(reason) => {
                let _ = client.send(close(3010, &ended_text(&reason))).await;
            }
            End::TakenOver => {
                let _ = client.send(close(3005, "Client is connected already.")).await;
            }
            End::Stopping => {
                self.let_go(&id, &conn).await;
                let _ = client.send(close(1001, "Going away")).await;
            }
        }
    }

    /// Takes session `id` for socket `conn`: when it ends (`session_ttl`), or `Ok(Err(code))`
    /// when it is no live session of the caller's (3004) or another socket holds it (3005).
    /// 1 read + 1 write.
    async fn take(
        &self,
        id: &str,
        conn: &str,
        request_id: &str,
        call: &Call,
    ) -> Result<Result<(i64, AuthenticationType), u16>, Error> {
        let now = now_epoch();
        let mut refusal = None;
        let taken = self
            .sessions()
            .update(id, |s| {
                refusal = refusal_of(s, request_id, call, now);
                if refusal.is_some() {
                    return false;
                }
                s.state = SessionState::Active;
                s.client_conn = Some(conn.to_owned());
                s.idle_since = None;
                if let Some(direct) = s.direct.as_mut() {
                    direct.lease_until = Some(now + LEASE_SECONDS);
                }
                true
            })
            .await;
        match taken {
            Ok((s, _)) => {
                let authentication = s.direct.as_ref().map(|d| d.authentication).unwrap_or_default();
                Ok(refusal.map_or(Ok((s.ends_at, authentication)), Err))
            }
            Err(Error::NotFound(_)) => Ok(Err(3004)),
            Err(e) => Err(e),
        }
    }

    /// Gives the session back, idle, if socket `conn` still holds it.
    async fn let_go(&self, id: &str, conn: &str) {
        let now = now_epoch();
        let released = self
            .sessions()
            .update(id, |s| {
                if s.client_conn.as_deref() != Some(conn) || s.state != SessionState::Active {
                    return false;
                }
                s.state = SessionState::Idle;
                s.idle_since = Some(now);
                s.client_conn = None;
                if let Some(direct) = s.direct.as_mut() {
                    direct.lease_until = None;
                }
                true
            })
            .await;
        if let Err(e) = released {
            // Its lease runs out instead: the session counts as idle from then.
            tracing::warn!(session = %id, error = %e, "the session could not be given back");
        }
    }

    /// Frames both ways until a side closes, the session ends or another socket holds it.
    async fn carry(
        &self,
        client: &mut Socket,
        nvcf: crate::nvcf::NvcfSocket,
        id: &str,
        conn: &str,
        ends_at: i64,
    ) -> End {
        let (mut to_nvcf, mut from_nvcf) = nvcf.split();
        let mut watch = tokio::time::interval(WATCH);
        watch.tick().await;
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.tick().await;
        let mut heard = tokio::time::Instant::now();
        let mut stopping = self.stopping.subscribe();
        if *stopping.borrow() {
            return End::Stopping;
        }
        let left = u64::try_from(ends_at - now_epoch()).unwrap_or(0);
        let deadline = tokio::time::sleep(Duration::from_secs(left));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                // It only ever turns true.
                Ok(()) = stopping.changed() => {
                    let _ = to_nvcf.send(Message::Close(None)).await;
                    break End::Stopping;
                }
                _ = keepalive.tick() => {
                    if heard.elapsed() > CLIENT_SILENCE {
                        let _ = to_nvcf.send(Message::Close(None)).await;
                        return End::ClientLeft;
                    }
                    let _ = client.send(Message::Ping(Default::default())).await;
                    let _ = to_nvcf.send(Message::Ping(Default::default())).await;
                }
                _ = &mut deadline => {
                    let _ = self.sessions().end(id, "max_duration").await;
                    let _ = to_nvcf.send(Message::Close(None)).await;
                    break End::SessionEnded("max_duration".into());
                }
                frame = client.next() => match frame {
                    Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                        heard = tokio::time::Instant::now();
                        if to_nvcf.send(m).await.is_err() {
                            break self.after_nvcf_left(id, conn, End::Dropped).await;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let _ = to_nvcf.send(Message::Close(frame)).await;
                        // The answer to the client's close, which tungstenite queued.
                        let _ = client.flush().await;
                        return End::ClientLeft;
                    }
                    // Pings and pongs: the client is there.
                    Some(Ok(_)) => heard = tokio::time::Instant::now(),
                    Some(Err(_)) | None => {
                        let _ = to_nvcf.send(Message::Close(None)).await;
                        return End::ClientLeft;
                    }
                },
                frame = from_nvcf.next() => match frame {
                    Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                        if client.send(m).await.is_err() {
                            let _ = to_nvcf.send(Message::Close(None)).await;
                            return End::ClientLeft;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => break self.after_nvcf_left(id, conn, End::Closed(frame)).await,
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break self.after_nvcf_left(id, conn, End::Dropped).await,
                },
                _ = watch.tick() => {
                    if let Some(end) = self.watch(id, conn).await {
                        let _ = to_nvcf.send(Message::Close(None)).await;
                        break end;
                    }
                }
            }
        }
    }

    /// NVCF's side closed: the session's end if it ended (NVCF's side closes when it is
    /// signed out), else `otherwise`.
    async fn after_nvcf_left(&self, id: &str, conn: &str, otherwise: End) -> End {
        match self.sessions().get(id).await {
            Ok((s, _)) if s.state == SessionState::Stopped => End::SessionEnded(s.ended_reason.unwrap_or_default()),
            Ok((s, _)) if s.client_conn.as_deref() != Some(conn) => End::TakenOver,
            _ => otherwise,
        }
    }

    /// The held session's record, read: its end, if it ended or another socket took it; its
    /// lease renewed when half gone. 1 read (and a write every half lease).
    async fn watch(&self, id: &str, conn: &str) -> Option<End> {
        let now = now_epoch();
        let (s, _) = self.sessions().get(id).await.ok()?;
        if s.state == SessionState::Stopped {
            return Some(End::SessionEnded(s.ended_reason.unwrap_or_default()));
        }
        if s.client_conn.as_deref() != Some(conn) {
            return Some(End::TakenOver);
        }
        let lease = s.direct.as_ref().and_then(|d| d.lease_until).unwrap_or(0);
        if lease - now < LEASE_SECONDS / 2 {
            let renewed = self
                .sessions()
                .update(id, |s| {
                    let ours = s.client_conn.as_deref() == Some(conn) && s.state == SessionState::Active;
                    if let (true, Some(direct)) = (ours, s.direct.as_mut()) {
                        direct.lease_until = Some(now + LEASE_SECONDS);
                    }
                    ours
                })
                .await;
            if let Err(e) = renewed {
                tracing::warn!(session = %id, error = %e, "the session's lease could not be renewed");
            }
        }
        None
    }
}

/// Why socket `call` may not take session `s` now: 3004 (not a live session of the caller's
/// for that function version and NVCF session), 3005 (another live socket holds it).
fn refusal_of(s: &Session, request_id: &str, call: &Call, now: i64) -> Option<u16> {
    let Some(direct) = &s.direct else { return Some(3004) };
    let same = direct.request_id == request_id
        && direct.function_id == call.function_id
        && direct.function_version_id == call.version_id
        && s.owner == call.owner;
    if !same || s.state == SessionState::Stopped {
        return Some(3004);
    }
    let held = s.state == SessionState::Active && direct.lease_until.is_some_and(|t| t > now);
    held.then_some(3005)
}
