//! The relay's WebSocket routes (`$connect`, `$default`, `$disconnect`): tickets consumed,
//! hellos that link the two sides, signals relayed or buffered, leavings (see [`super`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Value, json};

use super::push::{ConnectionPusher, PushError};
use super::{
    CONNECTION_TTL, Connection, MAX_FRAME_BYTES, SessionState, Sessions, Side, buffered, conn_key, connection_from,
    error_notice, notice, seq_key,
};
use portico_core::Error;
use portico_core::store::rmw;
use portico_core::store::{Condition, Counter, Item, Key, StoreError, Table, now_epoch};

/// Seconds a drain lease lasts if its holder never gives it back.
const DRAIN_LEASE_SECS: i64 = 10;
/// How long a session waits for another bridge when its bridge's task died: a taken message
/// shows again on the bridges' queue within its visibility (60 s), then a task takes it.
pub const HOST_RESUME_SECONDS: i64 = 90;
/// Why a host's `leave` may say the session ends.
const LEAVE_REASONS: [&str; 3] = ["host_left", "max_duration", "launch_failed"];
/// How long, and how often, a connection waits for another drainer of its buffer.
const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_millis(20);
const DRAIN_WAIT_ROUNDS: usize = 500;

/// Messages refused for rate before the connection is closed.
const RATE_STRIKES: u32 = 50;

/// Per-connection token buckets (per process: approximate across Lambda instances, but free
/// of storage calls).
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant, u32)>>,
}

enum Rate {
    Ok,
    Refuse,
    Abuse,
}

impl RateLimiter {
    /// Takes one token of `conn`'s bucket (`per_second` refill, `burst` capacity).
    fn check(&self, conn: &str, per_second: f64, burst: f64) -> Rate {
        let mut buckets = self.buckets.lock().expect("rate limiter");
        if buckets.len() > 100_000 {
            buckets.clear();
        }
        let (tokens, at, strikes) = buckets.entry(conn.to_owned()).or_insert((burst, Instant::now(), 0));
        *tokens = at.elapsed().as_secs_f64().mul_add(per_second, *tokens).min(burst);
        *at = Instant::now();
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Rate::Ok
        } else {
            *strikes += 1;
            if *strikes > RATE_STRIKES { Rate::Abuse } else { Rate::Refuse }
        }
    }

    fn forget(&self, conn: &str) {
        self.buckets.lock().expect("rate limiter").remove(conn);
    }
}

/// The WebSocket routes.
pub struct Relay<'a> {
    pub sessions: Sessions<'a>,
    pub limiter: &'a RateLimiter,
    /// Where the TURN secret is (`turn_secret_id`).
    pub secrets: &'a dyn portico_core::secrets::Secrets,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Option<Value>,
    /// The sender's own number for this message, passed on untouched: API Gateway may run
    /// one connection's messages concurrently, so a receiver that must see them in order
    /// reorders by it.
    #[serde(default)]
    seq: Option<Value>,
    /// A host's hello: it may leave and another bridge take the session up (see `left`).
    #[serde(default)]
    resumable: bool,
    /// A host's `leave`: why the session ends.
    #[serde(default)]
    reason: Option<String>,
}

impl<'a> Relay<'a> {
    fn table(&self) -> &dyn Table {
        self.sessions.table
    }

    fn pusher(&self) -> &dyn ConnectionPusher {
        self.sessions.pusher
    }

    /// `$connect`: consumes the ticket atomically and records the connection. An error
    /// refuses the connection (nothing is written for a bad ticket).
    pub async fn connect(&self, conn: &str, ticket: Option<&str>) -> Result<(), Error> {
        let (session_id, side) = self.sessions.redeem(ticket).await?;
        let session_id = session_id.as_str();
        let (session, _) = self.sessions.get(session_id).await?;
        if session.state == SessionState::Stopped {
            return Err(Error::Conflict("the session has ended".into()));
        }
        if session.direct.is_some() {
            return Err(Error::Conflict("this session's socket is the streaming portal's path (ws_url)".into()));
        }
        if session.conn(side).is_some() {
            return Err(Error::Conflict(format!("the session already has a {} connection", side.as_str())));
        }
        let mut item = Item::new(conn_key(conn)).with_s("session", session_id.to_owned()).with_s("side", side.as_str());
        item.expires_at = Some(now_epoch() + CONNECTION_TTL);
        self.table().put(item, Condition::Always).await?;
        Ok(())
    }

    /// `$default`: one message from `conn`. Problems are answered with an error notice; only
    /// abuse closes the connection.
    pub async fn message(&self, conn: &str, body: &str) -> Result<(), Error> {
        let config = self.sessions.config;
        match self.limiter.check(conn, config.relay_rate_per_second as f64, config.relay_rate_burst as f64) {
            Rate::Ok => {}
            Rate::Refuse => {
                return self.tell(conn, &error_notice("rate_limited", "too many messages; slow down")).await;
            }
            Rate::Abuse => {
                let _ = self.pusher().close(conn).await;
                return Ok(());
            }
        }
        if body.len() > MAX_FRAME_BYTES {
            return self.tell(conn, &error_notice("too_large", "messages are at most 32 KB")).await;
        }
        let envelope: Envelope = match portico_core::input::object(body.as_bytes()) {
            Ok(e) => e,
            Err(_) => {
                let hint = "expected JSON {\"type\": \"hello\" | \"signal\" | \"ping\", \"data\": ...}";
                return self.tell(conn, &error_notice("bad_message", hint)).await;
            }
        };
        let Some(me) = self.table().get(&conn_key(conn)).await?.as_ref().and_then(connection_from) else {
            let _ = self.pusher().close(conn).await;
            return Ok(());
        };
        match envelope.kind.as_str() {
            "signal" => {
                let Some(data) = envelope.data else {
                    return self.tell(conn, &error_notice("bad_message", "a signal needs \"data\"")).await;
                };
                let message = match envelope.seq {
                    None => json!({"type": "signal", "data": data}),
                    Some(seq) if seq.as_u64().is_some() => json!({"type": "signal", "data": data, "seq": seq}),
                    Some(_) => {
                        let hint = "\"seq\" is a whole number from 0 up";
                        return self.tell(conn, &error_notice("bad_message", hint)).await;
                    }
                }
                .to_string();
                match &me.peer {
                    Some(peer) if !me.draining => self.send_signal(conn, &me, peer, &message).await,
                    _ => self.buffer(conn, &me, &message).await,
                }
            }
            "hello" => self.hello(conn, &me, envelope.resumable).await,
            // A host leaving for good (a bridge whose stream ended): the session ends with it.
            "leave" if me.side == Side::Host => {
                let reason = envelope.reason.filter(|r| LEAVE_REASONS.contains(&r.as_str()));
                self.sessions.end(&me.session, reason.as_deref().unwrap_or("host_left")).await.map(|_| ())
            }
            "ping" => self.tell(conn, &notice("pong")).await,
            other => {
                let message = format!("unknown message type '{other}'");
                self.tell(conn, &error_notice("bad_message", &message)).await
            }
        }
    }

    /// Posts to our own connection; a vanished connection is cleaned up.
    async fn tell(&self, conn: &str, message: &str) -> Result<(), Error> {
        match self.pusher().post(conn, message).await {
            Ok(()) => Ok(()),
            Err(PushError::Gone) => self.disconnect(conn).await,
            Err(PushError::Failed(e)) => Err(Error::Unavailable(e)),
        }
    }

    /// Posts to the peer; a 410 means the peer is gone, which is handled as its disconnect.
    /// Whether the peer was there.
    async fn deliver(&self, me: &Connection, peer: &str, message: &str) -> Result<bool, Error> {
        match self.pusher().post(peer, message).await {
            Ok(()) => Ok(true),
            Err(PushError::Gone) => {
                tracing::info!(session = %me.session, "peer connection gone (410)");
                self.disconnect(peer).await?;
                Ok(false)
            }
            Err(PushError::Failed(e)) => Err(Error::Unavailable(e)),
        }
    }

    /// A signal straight to the linked peer. If the peer turns out to be gone, its leaving is
    /// handled (for a host: the session ends, or waits for another bridge) and the signal waits
    /// in the buffer for the peer, as any signal to an absent peer does.
    async fn send_signal(&self, conn: &str, me: &Connection, peer: &str, message: &str) -> Result<(), Error> {
        if self.deliver(me, peer, message).await? {
            return Ok(());
        }
        self.unlink(conn, peer).await?;
        // It waits for the peer: a client coming back, or a bridge taking the session up.
        self.buffer(conn, me, message).await
    }

    async fn buffer(&self, conn: &str, me: &Connection, message: &str) -> Result<(), Error> {
        let counters =
            [Counter::new("next", 1, None), Counter::new("pending", 1, Some(self.sessions.config.relay_buffer_max))];
        let seq = match self.table().add(&seq_key(&me.session, me.side), &counters, None).await {
            Ok(item) => item.n("next").unwrap_or(0),
            Err(StoreError::ConditionFailed { .. }) => {
                return self.tell(conn, &error_notice("buffer_full", "the peer has not joined; buffer is full")).await;
            }
            Err(e) => return Err(e.into()),
        };
        let mut item =
            Item::new(Key::new(format!("SESSION#{}", me.session), format!("BUF#{}#{seq:010}", me.side.as_str())))
                .with_s("data", message.to_owned());
        item.expires_at = Some(now_epoch() + self.sessions.config.session_host_timeout.max(60) as i64 * 2);
        self.table().put(item, Condition::Always).await?;
        // Linked (draining, or since our read): see it out ourselves, so that nothing this
        // connection sends next overtakes it.
        if let Some(peer) =
            self.table().get(&conn_key(conn)).await?.as_ref().and_then(connection_from).and_then(|c| c.peer)
        {
            self.drain(&me.session, me.side, &peer).await?;
        }
        Ok(())
    }

    /// Sends everything `from` buffered to `to`, in order. One drainer at a time per side (a
    /// lease item, expiring in case its holder dies); the others wait for it, so a message
    /// is never sent before one buffered ahead of it.
    async fn drain(&self, session: &str, from: Side, to: &str) -> Result<(), Error> {
        let lease_key = Key::new(format!("SESSION#{session}"), format!("LEASE#{}", from.as_str()));
        for _ in 0..DRAIN_WAIT_ROUNDS {
            let mut lease = Item::new(lease_key.clone());
            lease.expires_at = Some(now_epoch() + DRAIN_LEASE_SECS);
            let rev = lease.rev.clone();
            match self.table().put(lease, Condition::Absent).await {
                Ok(_) => {
                    let flushed = self.flush(session, from, to).await;
                    let _ = self.table().delete(&lease_key, Condition::Rev(rev)).await;
                    if !flushed? {
                        return Ok(()); // `to` is gone; its clean-up ends or idles the session
                    }
                }
                Err(StoreError::ConditionFailed { .. }) => tokio::time::sleep(DRAIN_WAIT).await,
                Err(e) => return Err(e.into()),
            }
            // Anything buffered after the drainer's last read is ours to send.
            if self.table().query(&buffered(session, from, 1)).await?.items.is_empty() {
                return Ok(());
            }
        }
        Err(Error::Unavailable("the relay buffer is busy; try again".into()))
    }

    /// Sends a page of what `from` buffered to `to`, in order, each message once (hold the
    /// drain lease: see [`Relay::drain`]). False when `to` turned out to be gone.
    async fn flush(&self, session: &str, from: Side, to: &str) -> Result<bool, Error> {
        let page = self.table().query(&buffered(session, from, self.sessions.config.relay_buffer_max as u32)).await?;
        let (mut sent, mut reachable) = (0, true);
        for item in &page.items {
            // Whoever deletes a buffered message sends it: never twice.
            if self.table().delete(&item.key, Condition::Exists).await.is_err() {
                continue;
            }
            if let Some(data) = item.s("data")
                && self.pusher().post(to, data).await == Err(PushError::Gone)
            {
                // Not delivered: back in its place (the lease is ours), for the next peer.
                self.table().put(item.clone(), Condition::Absent).await?;
                reachable = false;
                break;
            }
            sent += 1;
        }
        if sent > 0 {
            let _ = self.table().add(&seq_key(session, from), &[Counter::new("pending", -sent, None)], None).await;
        }
        Ok(reachable)
    }

    /// TURN servers and this side's credentials for them, valid until the session's end, when
    /// `turn_secret_id` and `turn_uris` are set.
    async fn ice_servers(&self, session: &crate::Session, side: Side) -> Result<Option<Value>, Error> {
        let config = self.sessions.config;
        let Some(id) = config.turn_secret_id.as_deref().filter(|_| !config.turn_uris.is_empty()) else {
            return Ok(None);
        };
        let secret = self.secrets.get(id).await?;
        let servers =
            crate::turn::ice_servers(&config.turn_uris, secret.as_bytes(), session.ends_at, &session.id, side.as_str());
        Ok(Some(servers))
    }

    /// `hello`: the side joins; when both have, they are linked and told, and buffers flow.
    async fn hello(&self, conn: &str, me: &Connection, resumable: bool) -> Result<(), Error> {
        let mut refusal = None;
        let (session, changed) = self
            .sessions
            .update(&me.session, |s| {
                refusal = None;
                if s.state == SessionState::Stopped {
                    refusal = Some(("session_ended", "the session has ended"));
                    return false;
                }
                match s.conn(me.side) {
                    Some(c) if c == conn => return false, // a repeated hello
                    Some(_) => {
                        refusal = Some(("already_connected", "the other connection of this side is still open"));
                        return false;
                    }
                    None => {}
                }
                s.set_conn(me.side, Some(conn.to_owned()));
                match me.side {
                    Side::Client => s.idle_since = None,
                    Side::Host => s.host_resumable = resumable,
                }
                s.state =
                    if s.conn(me.side.other()).is_some() { SessionState::Active } else { SessionState::Connecting };
                true
            })
            .await?;
        if let Some((code, message)) = refusal {
            let _ = self.pusher().post(conn, &error_notice(code, message)).await;
            let _ = self.pusher().close(conn).await;
            return Ok(());
        }
        let peer = session.conn(me.side.other()).cloned();
        let mut welcome =
            json!({"type": "welcome", "side": me.side.as_str(), "session": session.id, "peer": peer.is_some()});
        // The side is already joined: a TURN secret that cannot be read now leaves the welcome
        // without TURN servers rather than the session unlinked.
        match self.ice_servers(&session, me.side).await {
            Ok(Some(servers)) => welcome["iceServers"] = servers,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(session = %session.id, error = %e, "TURN credentials unavailable for this welcome")
            }
        }
        self.tell(conn, &welcome.to_string()).await?;
        if !changed {
            return Ok(());
        }
        // API Gateway may run this connection's `$disconnect` at the same time as its hello, in
        // another instance, which could find the session before this side was in it (and
        // change nothing) or unlink the peer before it was linked here: if the connection is
        // gone once this hello has written all it writes, its leaving is done again, over
        // that. The last link (when linking) finds out; else 1 read.
        let recorded = match peer {
            Some(peer) => {
                // Linked as draining: each side's new signals queue behind what it buffered
                // until that is out, then go direct.
                self.link(conn, &peer, true).await?;
                self.link(&peer, conn, true).await?;
                self.deliver(me, &peer, &notice("peer_joined")).await?;
                self.tell(conn, &notice("peer_joined")).await?;
                self.drain(&session.id, me.side.other(), conn).await?;
                self.link(&peer, conn, false).await?;
                self.drain(&session.id, me.side, &peer).await?;
                self.link(conn, &peer, false).await?
            }
            None => self.table().get(&conn_key(conn)).await?.is_some(),
        };
        if !recorded {
            self.left(conn, me).await?;
        }
        Ok(())
    }

    /// Clears `conn`'s peer if it is `peer` (a connection that left); whether it did.
    async fn unlink(&self, conn: &str, peer: &str) -> Result<bool, Error> {
        self.relink(conn, Some(peer), "", false).await
    }

    /// Links a connection to `peer` (`draining`: its signals still queue behind its buffer);
    /// whether the connection is still recorded.
    async fn link(&self, conn: &str, peer: &str, draining: bool) -> Result<bool, Error> {
        self.relink(conn, None, peer, draining).await
    }

    /// Sets a connection's peer (`""`: none) and draining mark, if it is still recorded and,
    /// with `only_from`, still linked to that peer: whether it did.
    async fn relink(&self, conn: &str, only_from: Option<&str>, peer: &str, draining: bool) -> Result<bool, Error> {
        for _ in rmw::attempts() {
            let Some(mut item) = self.table().get(&conn_key(conn)).await? else { return Ok(false) };
            if only_from.is_some_and(|from| item.s("peer") != Some(from)) {
                return Ok(false);
            }
            let rev = item.rev.clone();
            item.rev = portico_core::store::new_rev();
            item = item.with_s("peer", peer).with_s("draining", if draining { "1" } else { "" });
            if rmw::written(self.table().put(item, Condition::Rev(rev)).await)?.is_some() {
                return Ok(true);
            }
        }
        Err(Error::Conflict("connection record is changing concurrently".into()))
    }

    /// `$disconnect` (or a 410 for this connection): a host leaving ends the session; a
    /// client leaving makes it idle and tells the host. The connection item is read before it
    /// is deleted, so what it was is known even if the delete's answer is lost.
    pub async fn disconnect(&self, conn: &str) -> Result<(), Error> {
        self.limiter.forget(conn);
        let Some(me) = self.table().get(&conn_key(conn)).await?.as_ref().and_then(connection_from) else {
            return Ok(());
        };
        self.table().delete(&conn_key(conn), Condition::Always).await?;
        self.left(conn, &me).await
    }

    /// What a side's leaving changes, once its connection item is gone: a host ends the
    /// session, unless it said it may be resumed (a bridge whose task died: the session waits
    /// for another bridge until `host_deadline`, its client told `peer_left`); a client idles
    /// it (if it is the session's client), and the host, if linked to this client, is unlinked
    /// and told `peer_left`. Safe to repeat: a `$disconnect` and a hello that raced it may both
    /// get here.
    async fn left(&self, conn: &str, me: &Connection) -> Result<(), Error> {
        match me.side {
            Side::Host => {
                let mut resumable = false;
                let (session, changed) = self
                    .sessions
                    .update(&me.session, |s| {
                        resumable = s.host_resumable;
                        if !resumable || s.state == SessionState::Stopped || s.host_conn.as_deref() != Some(conn) {
                            return false;
                        }
                        s.host_conn = None;
                        s.host_deadline = now_epoch() + HOST_RESUME_SECONDS;
                        if s.client_conn.is_some() {
                            s.state = SessionState::Connecting;
                        }
                        true
                    })
                    .await?;
                if !resumable {
                    self.sessions.end(&me.session, "host_left").await?;
                } else if changed
                    && let Some(client) = session.client_conn.as_deref()
                    && self.unlink(client, conn).await?
                {
                    let _ = self.pusher().post(client, &notice("peer_left")).await;
                }
            }
            Side::Client => {
                let (session, _) = self
                    .sessions
                    .update(&me.session, |s| {
                        if s.state == SessionState::Stopped || s.client_conn.as_deref() != Some(conn) {
                            return false;
                        }
                        s.client_conn = None;
                        s.state = SessionState::Idle;
                        s.idle_since = Some(now_epoch());
                        true
                    })
                    .await?;
                if let Some(host) = session.host_conn.as_deref()
                    && self.unlink(host, conn).await?
                {
                    let _ = self.pusher().post(host, &notice("peer_left")).await;
                }
            }
        }
        Ok(())
    }
}
