//! Streaming sessions (seed 000) and the serverless WebSocket signal relay (architecture §5).
//!
//! A session pairs one client (the browser) with one host (the app's streaming function).
//! `POST /sessions` reserves quota, records the session, issues two single-use tickets and
//! asks the streaming function to join. Each side opens the WebSocket API with `?ticket=`.
//!
//! Protocol (JSON text frames, `{"type": ..., ...}`), a refinement of §5: API Gateway cannot
//! post to a connection still inside `$connect`, so a side announces itself once open with
//! `{"type": "hello"}`; the relay answers `{"type": "welcome", "side", "peer"}`, links the two
//! connections when both are there (`{"type": "peer_joined"}` to each), and flushes what was
//! buffered. `{"type": "signal", "data": ...}` goes to the peer, or into a bounded, ordered,
//! TTL'd buffer until the peer says hello. The relay itself sends `peer_joined`,
//! `peer_left`, `session_ended` and `error` notices.
//!
//! States: `connecting` (created; waiting for both sides), `active` (both joined), `idle` (the
//! client left; it may come back with a fresh ticket within `session_idle_timeout`),
//! `stopped`. The host leaving, `DELETE /sessions/{id}`, a 410 from `PostToConnection`, the
//! host not arriving within `session_host_timeout`, idling too long, or `session_ttl` end a
//! session: both connections are told and closed, the quota is released, exactly once.
//!
//! Storage: sessions at `pk = "SESSIONS#<first hex digit of the id>"`, `sk = <id>`: sixteen
//! partitions, so session writes are not capped by one partition's throughput, which
//! administrators list in id order with strongly consistent queries, shard after shard; index `gsi1` = `OWNER#<user>` lists a user's own; an ended
//! session expires `session_history_ttl` later), a marker per live session at
//! `LIVE_SESSIONS` / `<id>` (what the sweeper reads, so its work follows the live sessions,
//! not the history),
//! tickets at `TICKET#<t>` (TTL), connections at `CONN#<id>` (session, side, peer), buffered
//! messages at `SESSION#<id>` / `BUF#<side>#<seq>` (TTL). Relaying a signal to a joined peer
//! costs one read (the sender's connection item, which names the peer) and one post.

pub mod functions;
pub mod launch;
pub mod push;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::directory::rfc3339;
use crate::quotas::{Quotas, Resources};
use crate::store::sharded::Sharded;
use crate::store::{Condition, Counter, Cursor, Item, Key, Query, StoreError, Table, now_epoch};
use crate::{Config, Error};
use push::{ConnectionPusher, PushError};

/// Largest message API Gateway passes in one WebSocket frame.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// Connections live at most this long on API Gateway.
const CONNECTION_TTL: i64 = 2 * 3600;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Client,
    Host,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Host => "host",
        }
    }

    fn parse(s: &str) -> Option<Side> {
        match s {
            "client" => Some(Side::Client),
            "host" => Some(Side::Host),
            _ => None,
        }
    }

    fn other(self) -> Side {
        match self {
            Side::Client => Side::Host,
            Side::Host => Side::Client,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    Connecting,
    Active,
    Idle,
    Stopped,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Connecting => "connecting",
            SessionState::Active => "active",
            SessionState::Idle => "idle",
            SessionState::Stopped => "stopped",
        }
    }
}

/// A session as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub owner: String,
    pub app: String,
    pub app_group: String,
    pub state: SessionState,
    /// Epoch seconds.
    pub created_at: i64,
    /// The session ends by then at the latest (`session_ttl`).
    pub ends_at: i64,
    /// The host must have joined by then (`session_host_timeout`).
    pub host_deadline: i64,
    pub idle_since: Option<i64>,
    pub client_conn: Option<String>,
    pub host_conn: Option<String>,
    pub ended_reason: Option<String>,
}

impl Session {
    /// What clients see (connection ids stay inside).
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "owner": self.owner,
            "app": self.app,
            "state": self.state,
            "created_at": rfc3339(self.created_at),
            "ends_at": rfc3339(self.ends_at),
            "client_connected": self.client_conn.is_some(),
            "host_connected": self.host_conn.is_some(),
            "ended_reason": self.ended_reason,
        })
    }

    fn conn(&self, side: Side) -> Option<&String> {
        match side {
            Side::Client => self.client_conn.as_ref(),
            Side::Host => self.host_conn.as_ref(),
        }
    }

    fn set_conn(&mut self, side: Side, conn: Option<String>) {
        match side {
            Side::Client => self.client_conn = conn,
            Side::Host => self.host_conn = conn,
        }
    }
}

/// Sessions, over sixteen partitions by their id's first hex digit.
const SESSIONS: Sharded = Sharded::new("SESSIONS");

/// Where session `id` lives (an id that is none reads as absent).
pub fn session_key(id: &str) -> Key {
    SESSIONS.key(id)
}
fn ticket_key(ticket: &str) -> Key {
    Key::new(format!("TICKET#{ticket}"), "TICKET")
}

fn conn_key(conn: &str) -> Key {
    Key::new(format!("CONN#{conn}"), "CONN")
}

/// The first `limit` signals `side` buffered, oldest first.
fn buffered(session: &str, side: Side, limit: u32) -> Query {
    let mut q = Query::table(format!("SESSION#{session}"), limit);
    q.sk_prefix = Some(format!("BUF#{}#", side.as_str()));
    q
}

fn seq_key(session: &str, side: Side) -> Key {
    Key::new(format!("SESSION#{session}"), format!("SEQ#{}", side.as_str()))
}

fn instances_key(owner: &str, app: &str) -> Key {
    Key::new(format!("USER#{owner}"), format!("APPINST#{app}"))
}

fn random_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

fn one_session() -> Resources {
    Resources { sessions: 1, ..Resources::default() }
}

fn session_item(s: &Session, history_ttl: u64) -> Item {
    let mut item = Item::new(session_key(&s.id))
        .with_doc(s)
        .with_s("state", s.state.as_str())
        .with_s("owner", s.owner.clone())
        .with_s("app", s.app.clone());
    item.index_key = Some(Key::new(format!("OWNER#{}", s.owner), format!("{:012}#{}", s.created_at, s.id)));
    if s.state == SessionState::Stopped {
        item.expires_at = Some(now_epoch() + history_ttl as i64);
    }
    item
}

const LIVE_PARTITION: &str = "LIVE_SESSIONS";

fn live_key(id: &str) -> Key {
    Key::new(LIVE_PARTITION, id)
}

/// A live marker older than this without its session is left over from a start that failed
/// half-way (younger ones may belong to a start still in progress).
const DANGLING_MARKER_AGE: i64 = 300;

fn session_from(item: &Item) -> Result<Session, Error> {
    item.doc()
}

/// A relay notice.
fn notice(kind: &str) -> String {
    json!({ "type": kind }).to_string()
}

fn error_notice(code: &str, message: &str) -> String {
    json!({ "type": "error", "code": code, "message": message }).to_string()
}

/// A connection item: which session and side it is, and its peer once linked.
#[derive(Clone, Debug)]
struct Connection {
    session: String,
    side: Side,
    peer: Option<String>,
    /// Linked, but what this side buffered is still going out: its signals queue behind it.
    draining: bool,
}

fn connection_from(item: &Item) -> Option<Connection> {
    Some(Connection {
        session: item.s("session")?.to_owned(),
        side: Side::parse(item.s("side")?)?,
        peer: item.s("peer").filter(|p| !p.is_empty()).map(str::to_owned),
        draining: item.s("draining") == Some("1"),
    })
}

/// Session operations: create, read, list, end, sweep.
pub struct Sessions<'a> {
    pub table: &'a dyn Table,
    pub pusher: &'a dyn ConnectionPusher,
    pub config: &'a Config,
}

/// A session just started, with the client's ticket.
pub struct Started {
    pub session: Session,
    pub client_ticket: String,
    pub host_ticket: String,
}

impl<'a> Sessions<'a> {
    /// The session and its revision. 1 read.
    pub async fn get(&self, id: &str) -> Result<(Session, String), Error> {
        let not_found = || Error::NotFound(format!("session '{id}' does not exist"));
        if id.is_empty() || id.len() > 64 {
            return Err(not_found());
        }
        let item = self.table.get(&session_key(id)).await?.ok_or_else(not_found)?;
        Ok((session_from(&item)?, item.rev))
    }

    /// Reserves the owner's quota and an instance of the app, records the session (and its
    /// live marker) and issues both tickets: 2 counter updates + 4 writes. Refusals change
    /// nothing.
    pub async fn start(&self, owner: &str, app: &str, app_group: &str, limits: &Resources) -> Result<Started, Error> {
        let quotas = Quotas::new(self.table);
        quotas.reserve(owner, &one_session(), limits).await?;
        let max = self.config.max_app_instances_count;
        let instance = self.table.add(&instances_key(owner, app), &[Counter::new("live", 1, Some(max))], None).await;
        if let Err(e) = instance {
            let _ = quotas.release(owner, &one_session()).await;
            return Err(match e {
                StoreError::ConditionFailed { .. } => {
                    Error::QuotaExceeded(format!("at most {max} live session(s) of app '{app}' per user"))
                }
                other => other.into(),
            });
        }
        let now = now_epoch();
        let session = Session {
            id: uuid::Uuid::new_v4().simple().to_string(),
            owner: owner.to_owned(),
            app: app.to_owned(),
            app_group: app_group.to_owned(),
            state: SessionState::Connecting,
            created_at: now,
            ends_at: now + self.config.session_ttl as i64,
            host_deadline: now + self.config.session_host_timeout as i64,
            idle_since: None,
            client_conn: None,
            host_conn: None,
            ended_reason: None,
        };
        let recorded = async {
            // The marker first: a session the sweeper cannot see could outlive its deadlines.
            self.table.put(Item::new(live_key(&session.id)).with_n("since", now), Condition::Always).await?;
            self.table.put(session_item(&session, self.config.session_history_ttl), Condition::Absent).await
        }
        .await;
        if let Err(e) = recorded {
            self.release(&session).await;
            let _ = self.table.delete(&live_key(&session.id), Condition::Always).await;
            return Err(e.into());
        }
        let tickets = async {
            let client_ticket = self.ticket(&session.id, Side::Client).await?;
            let host_ticket = self.ticket(&session.id, Side::Host).await?;
            Ok::<_, Error>((client_ticket, host_ticket))
        }
        .await;
        match tickets {
            Ok((client_ticket, host_ticket)) => Ok(Started { session, client_ticket, host_ticket }),
            Err(e) => {
                // Recorded: ending it releases the quota, once, whoever gets there first.
                let _ = self.end(&session.id, "start_failed").await;
                Err(e)
            }
        }
    }

    /// A fresh single-use ticket for `side` of the session. 1 write.
    pub async fn ticket(&self, session: &str, side: Side) -> Result<String, Error> {
        let ticket = random_token();
        let mut item =
            Item::new(ticket_key(&ticket)).with_s("session", session.to_owned()).with_s("side", side.as_str());
        item.expires_at = Some(now_epoch() + self.config.session_ticket_ttl as i64);
        self.table.put(item, Condition::Absent).await?;
        Ok(ticket)
    }

    /// A page of the owner's sessions, newest last. 1 query (index: eventually consistent).
    pub async fn list_owned(
        &self,
        owner: &str,
        limit: u32,
        after: Option<Cursor>,
    ) -> Result<(Vec<Session>, Option<Cursor>), Error> {
        let mut q = Query::index(format!("OWNER#{owner}"), limit);
        q.after = after;
        let page = self.table.query(&q).await?;
        Ok((page.items.iter().map(session_from).collect::<Result<_, _>>()?, page.next))
    }

    /// A page of every session in id order, optionally filtered by state, app or owner:
    /// the shards are read one after another until the page is full. 1 query when the page
    /// ends inside a shard, at most one per shard (16). Like every filtered listing, a page
    /// may be short.
    pub async fn list_all(
        &self,
        filters: Vec<(String, String)>,
        limit: u32,
        after: Option<Cursor>,
    ) -> Result<(Vec<Session>, Option<Cursor>), Error> {
        let (items, next) = SESSIONS.list(self.table, &filters, limit, after.as_ref()).await?;
        Ok((items.iter().map(session_from).collect::<Result<_, _>>()?, next))
    }

    /// Changes a session with `change` under its revision (retried on a concurrent change).
    /// `change` answers `false` to leave it as it is. Returns the session as written or left.
    async fn update(&self, id: &str, mut change: impl FnMut(&mut Session) -> bool) -> Result<(Session, bool), Error> {
        for _ in 0..5 {
            let (mut session, rev) = self.get(id).await?;
            if !change(&mut session) {
                return Ok((session, false));
            }
            match self.table.put(session_item(&session, self.config.session_history_ttl), Condition::Rev(rev)).await {
                Ok(_) => return Ok((session, true)),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict(format!("session '{id}' is changing concurrently; retry")))
    }

    async fn release(&self, session: &Session) {
        let released = Quotas::new(self.table).release(&session.owner, &one_session()).await;
        let instance =
            self.table.add(&instances_key(&session.owner, &session.app), &[Counter::new("live", -1, None)], None).await;
        if released.is_err() || instance.is_err() {
            tracing::warn!(session = %session.id, "releasing the quota of an ended session failed");
        }
    }

    /// Ends the session: stopped, both sides told and closed, quota released. Only the call
    /// that makes the change does the rest, so it happens once. Returns whether it did.
    pub async fn end(&self, id: &str, reason: &str) -> Result<bool, Error> {
        let mut ended = None;
        let (_, changed) = self
            .update(id, |s| {
                if s.state == SessionState::Stopped {
                    return false;
                }
                ended = Some(s.clone());
                s.state = SessionState::Stopped;
                s.ended_reason = Some(reason.to_owned());
                s.client_conn = None;
                s.host_conn = None;
                true
            })
            .await?;
        let Some(before) = ended.filter(|_| changed) else { return Ok(false) };
        self.release(&before).await;
        // Left behind if this fails; the sweeper removes markers of ended sessions.
        let _ = self.table.delete(&live_key(id), Condition::Always).await;
        let message = json!({"type": "session_ended", "reason": reason}).to_string();
        for conn in [before.client_conn.as_ref(), before.host_conn.as_ref()].into_iter().flatten() {
            let _ = self.pusher.post(conn, &message).await;
            let _ = self.pusher.close(conn).await;
            self.table.delete(&conn_key(conn), Condition::Always).await?;
        }
        tracing::info!(session = %id, reason, "session ended");
        Ok(true)
    }

    /// Ends sessions past their deadlines (the host never came, idle too long, too old).
    /// Not a request path: run on a schedule. Returns how many it ended.
    pub async fn sweep(&self) -> Result<usize, Error> {
        let now = now_epoch();
        let mut ended = 0;
        let mut after = None;
        loop {
            let mut q = Query::table(LIVE_PARTITION, 100);
            q.after = after;
            let page = self.table.query(&q).await?;
            for marker in &page.items {
                let id = marker.key.sk.as_str();
                let s = match self.table.get(&session_key(id)).await? {
                    Some(item) => session_from(&item)?,
                    // A start that failed half-way; a young marker may be a start in progress.
                    None => {
                        if marker.n("since").is_none_or(|t| now - t >= DANGLING_MARKER_AGE) {
                            self.table.delete(&marker.key, Condition::Always).await?;
                        }
                        continue;
                    }
                };
                if s.state == SessionState::Stopped {
                    // Ended, but removing its marker failed then.
                    self.table.delete(&marker.key, Condition::Always).await?;
                    continue;
                }
                if let Some(reason) = self.overdue(&s, now)
                    && self.end(&s.id, reason).await?
                {
                    ended += 1;
                }
            }
            match page.next {
                Some(c) => after = Some(c),
                None => return Ok(ended),
            }
        }
    }

    /// Why `s` must end now, if it must.
    fn overdue(&self, s: &Session, now: i64) -> Option<&'static str> {
        if now >= s.ends_at {
            Some("max_duration")
        } else if s.host_conn.is_none() && s.state == SessionState::Connecting && now >= s.host_deadline {
            Some("host_timeout")
        } else if s.state == SessionState::Idle
            && s.idle_since.is_some_and(|t| now >= t + self.config.session_idle_timeout as i64)
        {
            Some("idle_timeout")
        } else {
            None
        }
    }
}

/// Seconds a drain lease lasts if its holder never gives it back.
const DRAIN_LEASE_SECS: i64 = 10;
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
        *tokens = (*tokens + at.elapsed().as_secs_f64() * per_second).min(burst);
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
        let ticket = ticket
            .filter(|t| !t.is_empty() && t.len() <= 128)
            .ok_or_else(|| Error::Unauthorized("a ticket is required (?ticket=...)".into()))?;
        let used = match self.table().delete(&ticket_key(ticket), Condition::Exists).await {
            Ok(Some(item)) => item,
            Ok(None) | Err(StoreError::ConditionFailed { .. }) => {
                return Err(Error::Unauthorized("the ticket is invalid, used or expired".into()));
            }
            Err(e) => return Err(e.into()),
        };
        let (Some(session_id), Some(side)) = (used.s("session"), used.s("side").and_then(Side::parse)) else {
            return Err(Error::Internal("ticket item without session or side".into()));
        };
        let (session, _) = self.sessions.get(session_id).await?;
        if session.state == SessionState::Stopped {
            return Err(Error::Conflict("the session has ended".into()));
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
        let envelope: Envelope = match crate::input::object(body.as_bytes()) {
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
                    Some(peer) if !me.draining => self.deliver(&me, peer, &message).await,
                    _ => self.buffer(conn, &me, &message).await,
                }
            }
            "hello" => self.hello(conn, &me).await,
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
    async fn deliver(&self, me: &Connection, peer: &str, message: &str) -> Result<(), Error> {
        match self.pusher().post(peer, message).await {
            Ok(()) => Ok(()),
            Err(PushError::Gone) => {
                tracing::info!(session = %me.session, "peer connection gone (410)");
                self.disconnect(peer).await
            }
            Err(PushError::Failed(e)) => Err(Error::Unavailable(e)),
        }
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
            sent += 1;
            if let Some(data) = item.s("data")
                && self.pusher().post(to, data).await == Err(PushError::Gone)
            {
                reachable = false;
                break;
            }
        }
        if sent > 0 {
            let _ = self.table().add(&seq_key(session, from), &[Counter::new("pending", -sent, None)], None).await;
        }
        Ok(reachable)
    }

    /// `hello`: the side joins; when both have, they are linked and told, and buffers flow.
    async fn hello(&self, conn: &str, me: &Connection) -> Result<(), Error> {
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
                if me.side == Side::Client {
                    s.idle_since = None;
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
        let welcome =
            json!({"type": "welcome", "side": me.side.as_str(), "session": session.id, "peer": peer.is_some()});
        self.tell(conn, &welcome.to_string()).await?;
        let Some(peer) = peer.filter(|_| changed) else { return Ok(()) };
        // Linked as draining: each side's new signals queue behind what it buffered until
        // that is out, then go direct.
        self.link(conn, Some(&peer), true).await?;
        self.link(&peer, Some(conn), true).await?;
        self.deliver(me, &peer, &notice("peer_joined")).await?;
        self.tell(conn, &notice("peer_joined")).await?;
        self.drain(&session.id, me.side.other(), conn).await?;
        self.link(&peer, Some(conn), false).await?;
        self.drain(&session.id, me.side, &peer).await?;
        self.link(conn, Some(&peer), false).await
    }

    /// Sets (or clears) a connection's peer, if the connection is still recorded.
    async fn link(&self, conn: &str, peer: Option<&str>, draining: bool) -> Result<(), Error> {
        for _ in 0..5 {
            let Some(mut item) = self.table().get(&conn_key(conn)).await? else { return Ok(()) };
            let rev = item.rev.clone();
            item.rev = crate::store::new_rev();
            item = item.with_s("peer", peer.unwrap_or_default()).with_s("draining", if draining { "1" } else { "" });
            match self.table().put(item, Condition::Rev(rev)).await {
                Ok(_) => return Ok(()),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict("connection record is changing concurrently".into()))
    }

    /// `$disconnect` (or a 410 for this connection): a host leaving ends the session; a
    /// client leaving makes it idle and tells the host.
    pub async fn disconnect(&self, conn: &str) -> Result<(), Error> {
        self.limiter.forget(conn);
        let Some(me) =
            self.table().delete(&conn_key(conn), Condition::Always).await?.as_ref().and_then(connection_from)
        else {
            return Ok(());
        };
        match me.side {
            Side::Host => {
                self.sessions.end(&me.session, "host_left").await?;
            }
            Side::Client => {
                let (session, changed) = self
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
                if let (true, Some(host)) = (changed, session.host_conn.as_deref()) {
                    self.link(host, None, false).await?;
                    let _ = self.pusher().post(host, &notice("peer_left")).await;
                }
            }
        }
        Ok(())
    }
}
