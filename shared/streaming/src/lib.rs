//! Streaming sessions (the Omniverse portal sample) and the serverless WebSocket signal relay.
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

pub mod bridge;
pub mod bridge_queue;
mod clients;
pub mod direct;
pub mod functions;
pub mod launch;
mod model;
pub mod nvcf;
pub mod push;
mod socket;
mod start;
mod sweep;
pub mod turn;

use serde_json::json;

pub use clients::{AppStatuses, Streaming, nvcf_signaling};
pub use model::{DirectStream, Session, SessionState, SessionView, Side, direct_session_id};
use nvcf::NvcfSignaling;
use portico_core::quotas::{Quotas, Resources, holder_flag};
use portico_core::store::rmw;
use portico_core::store::sharded::Sharded;
use portico_core::store::{Condition, Counter, Cursor, Item, Key, Query, StoreError, Table, now_epoch};
use portico_core::{Config, Error};
use push::ConnectionPusher;
pub use socket::{RateLimiter, Relay};

/// The streaming domain's named schemas in the OpenAPI document (the bodies' own are collected
/// from the handlers' declarations).
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(SessionState, functions::AppStatus)))]
pub struct Components;

/// Largest message API Gateway passes in one WebSocket frame.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// Connections live at most this long on API Gateway.
const CONNECTION_TTL: i64 = 2 * 3600;

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
    /// NVCF's signaling, to end NVCF's side of the sessions started on the portal's own routes
    /// when they end (none: NVCF ends them at its own timeout).
    pub nvcf: Option<&'a NvcfSignaling>,
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
        for _ in rmw::attempts() {
            let (mut session, rev) = self.get(id).await?;
            if !change(&mut session) {
                return Ok((session, false));
            }
            let item = session_item(&session, self.config.session_history_ttl);
            if rmw::written(self.table.put(item, Condition::Rev(rev)).await)?.is_some() {
                return Ok((session, true));
            }
        }
        Err(Error::Conflict(format!("session '{id}' is changing concurrently; retry")))
    }

    /// Gives back what session `id` holds (its quota unit, its app instance), if it holds it:
    /// once, however often called. False when the store could not be reached (the session's
    /// marker must then stay, for the sweeper to try again).
    async fn release(&self, owner: &str, app: &str, id: &str) -> bool {
        let released = Quotas::new(self.table).release_for(owner, id, &one_session()).await;
        let counters = [Counter::new("live", -1, None), Counter::clear_flag(holder_flag(id))];
        let instance = match self.table.add(&instances_key(owner, app), &counters, None).await {
            Ok(_) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(e),
        };
        if released.is_err() || instance.is_err() {
            tracing::warn!(session = %id, "releasing what a session holds failed; the sweeper will retry");
            return false;
        }
        true
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
        // The marker stays until what the session held is back: the sweeper finishes the job
        // for ended sessions whose marker is left.
        if self.release(&before.owner, &before.app, &before.id).await {
            let _ = self.table.delete(&live_key(id), Condition::Always).await;
        }
        if let Some(direct) = &before.direct {
            // Ended here first, so the socket holding it reads why when NVCF's side closes.
            if let Some(nvcf) = self.nvcf
                && let Err(e) =
                    nvcf.sign_out(&direct.function_id, &direct.function_version_id, &direct.request_id).await
            {
                tracing::warn!(session = %id, error = %e, "NVCF's session could not be ended; NVCF's timeout will");
            }
            tracing::info!(session = %id, reason, "session ended");
            return Ok(true);
        }
        let message = json!({"type": "session_ended", "reason": reason}).to_string();
        for conn in [before.client_conn.as_ref(), before.host_conn.as_ref()].into_iter().flatten() {
            let _ = self.pusher.post(conn, &message).await;
            let _ = self.pusher.close(conn).await;
            self.table.delete(&conn_key(conn), Condition::Always).await?;
        }
        tracing::info!(session = %id, reason, "session ended");
        Ok(true)
    }
}
