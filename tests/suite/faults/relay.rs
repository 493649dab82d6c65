//! One WebSocket connection's messages handled by two relay instances at once, as API
//! Gateway may run them in two Lambda instances: two `Services` (and relay functions) over one
//! table, posting through one Management API.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use portico_core::Services;
use portico_core::quotas::{Quotas, Resources};
use portico_core::secrets::LocalSecrets;
use portico_core::store::{Condition, Item, Key, StoreError, Table};
use portico_core::web::{WebSocketApi, WsEvent};
use portico_sessions::RelayApi;
use portico_streaming::push::{ConnectionPusher, PushError};
use portico_streaming::{Session, SessionState, Sessions, Side, Streaming, session_key};
use portico_tests::{Intercept, Intercepted, test_config};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// The Management API both instances post through: posts to an open connection are kept,
/// posts to any other are 410 Gone (as API Gateway answers for a closed socket).
#[derive(Default)]
struct Gateway {
    open: Mutex<HashSet<String>>,
    got: Mutex<HashMap<String, Vec<Value>>>,
}

#[async_trait::async_trait]
impl ConnectionPusher for Gateway {
    async fn post(&self, conn: &str, data: &str) -> Result<(), PushError> {
        if !self.open.lock().unwrap().contains(conn) {
            return Err(PushError::Gone);
        }
        let message = serde_json::from_str(data).expect("the relay sends JSON");
        self.got.lock().unwrap().entry(conn.to_owned()).or_default().push(message);
        Ok(())
    }

    async fn close(&self, conn: &str) -> Result<(), PushError> {
        self.open.lock().unwrap().remove(conn);
        Ok(())
    }
}

impl Gateway {
    fn of_type(&self, conn: &str, kind: &str) -> Vec<Value> {
        let got = self.got.lock().unwrap();
        got.get(conn).into_iter().flatten().filter(|m| m["type"] == kind).cloned().collect()
    }

    /// The `seq` of every signal `conn` received, in arrival order (each carries `{"n": seq}`).
    fn seqs(&self, conn: &str) -> Vec<u64> {
        self.of_type(conn, "signal")
            .iter()
            .map(|m| {
                assert_eq!(m["data"]["n"], m["seq"], "a signal's data and seq travel together: {m}");
                m["seq"].as_u64().unwrap()
            })
            .collect()
    }
}

/// A store whose one chosen call, once armed, waits (after telling the test it got there)
/// until the test lets it go: a race decided on purpose, not by the scheduler.
struct Gated {
    inner: Arc<dyn Table>,
    pause: Mutex<Option<Pause>>,
}

struct Pause {
    /// "get" or "put", and the key's `pk` prefix.
    op: &'static str,
    pk: String,
    /// Matching calls let through before the one that waits.
    skip: usize,
    reached: Arc<Notify>,
    go: Arc<Notify>,
}

impl Gated {
    async fn gate(&self, op: &str, key: &Key) {
        let waiting = {
            let mut pause = self.pause.lock().unwrap();
            match pause.as_mut() {
                Some(p) if p.op == op && key.pk.starts_with(&p.pk) && p.skip > 0 => {
                    p.skip -= 1;
                    None
                }
                Some(p) if p.op == op && key.pk.starts_with(&p.pk) => pause.take(),
                _ => None,
            }
        };
        if let Some(p) = waiting {
            p.reached.notify_one();
            p.go.notified().await;
        }
    }
}

#[async_trait::async_trait]
impl Intercept for Gated {
    fn inner(&self) -> &dyn Table {
        self.inner.as_ref()
    }
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.gate("get", key).await;
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<Option<Item>, StoreError> {
        self.gate("put", &item.key).await;
        self.inner.put(item, condition).await
    }
}

/// Two relay instances over one table (the first through a [`Gated`] view of it).
struct Pair {
    relays: [RelayApi; 2],
    gated: Arc<Intercepted<Gated>>,
    table: Arc<dyn Table>,
    gateway: Arc<Gateway>,
    config: portico_core::Config,
    sessions_started: Mutex<usize>,
}

impl Pair {
    async fn new(table: Arc<dyn Table>) -> Pair {
        let mut config = test_config();
        config.quota_sessions = 100;
        config.max_app_instances_count = 100;
        // The test sends in bursts; the per-connection rate limit is not under test here.
        config.relay_rate_burst = 10_000;
        let gateway = Arc::new(Gateway::default());
        let gated = Arc::new(Intercepted(Gated { inner: Arc::clone(&table), pause: Mutex::new(None) }));
        let secrets = Arc::new(LocalSecrets::new(config.local_secrets.clone()));
        let instance = |table: Arc<dyn Table>| {
            let (config, secrets, gateway) = (config.clone(), Arc::clone(&secrets), Arc::clone(&gateway));
            async move {
                let services = Services::with(config, table, secrets).await.expect("services");
                let mut streaming = Streaming::from_services(&services);
                streaming.pusher = gateway;
                RelayApi::new(Arc::new(services), Arc::new(streaming))
            }
        };
        let relays = [instance(gated.clone()).await, instance(Arc::clone(&table)).await];
        Pair { relays, gated, table, gateway, config, sessions_started: Mutex::new(0) }
    }

    fn sessions(&self) -> Sessions<'_> {
        Sessions { table: self.table.as_ref(), pusher: self.gateway.as_ref(), config: &self.config, nvcf: None }
    }

    /// A session of bob's, with its client and host connected (not yet joined): (id, client
    /// connection, host connection).
    async fn session(&self) -> (String, String, String) {
        let limits = Resources { sessions: 100, ..Resources::default() };
        let started = self.sessions().start("bob", "viewer", "", &limits).await.expect("a session");
        let n = {
            let mut count = self.sessions_started.lock().unwrap();
            *count += 1;
            *count
        };
        let (client, host) = (format!("client-{n}"), format!("host-{n}"));
        self.connect(0, &client, &started.client_ticket).await;
        self.connect(1, &host, &started.host_ticket).await;
        (started.session.id, client, host)
    }

    async fn connect(&self, relay: usize, conn: &str, ticket: &str) {
        let event = WsEvent::Connect { connection_id: conn.into(), ticket: Some(ticket.into()) };
        assert_eq!(self.relays[relay].handle(event).await, 200, "{conn} connects");
        self.gateway.open.lock().unwrap().insert(conn.into());
    }

    async fn send(&self, relay: usize, conn: &str, message: Value) {
        let event = WsEvent::Message { connection_id: conn.into(), body: message.to_string() };
        assert_eq!(self.relays[relay].handle(event).await, 200, "{conn}: {message}");
    }

    async fn hello(&self, relay: usize, conn: &str) {
        self.send(relay, conn, json!({"type": "hello"})).await;
    }

    async fn signal(&self, relay: usize, conn: &str, seq: u64) {
        self.send(relay, conn, json!({"type": "signal", "data": {"n": seq}, "seq": seq})).await;
    }

    /// The socket closes (posts to it are Gone from now on), then `$disconnect` runs.
    async fn leave(&self, relay: usize, conn: &str) {
        self.gateway.open.lock().unwrap().remove(conn);
        let event = WsEvent::Disconnect { connection_id: conn.into() };
        assert_eq!(self.relays[relay].handle(event).await, 200, "{conn} leaves");
    }

    /// `count` signals from `conn`, seq `from..from + count`, all at once, alternating instances.
    async fn burst(&self, conn: &str, from: u64, count: u64) {
        let sends = (from..from + count).map(|seq| self.signal((seq % 2) as usize, conn, seq));
        futures_util::future::join_all(sends).await;
    }

    async fn stored(&self, id: &str) -> Session {
        self.table.get(&session_key(id)).await.unwrap().expect("the session").doc().unwrap()
    }

    /// The peer a connection item names (`""` for none) and whether it is draining.
    async fn link_of(&self, conn: &str) -> Option<(String, bool)> {
        let item = self.table.get(&Key::new(format!("CONN#{conn}"), "CONN")).await.unwrap()?;
        Some((item.s("peer").unwrap_or_default().to_owned(), item.s("draining") == Some("1")))
    }
}

/// Exactly once each of `from..to`, whatever the arrival order (`seq` sorts them).
fn once_each(mut got: Vec<u64>, from: u64, to: u64, what: &str) {
    got.sort_unstable();
    assert_eq!(got, (from..to).collect::<Vec<_>>(), "{what}: every signal once");
}

/// Both sides say hello twice, through both instances, all at once; then each side sends a
/// burst through both instances at once. Each side is told `peer_joined` once, the two are
/// linked to each other, and every signal reaches the peer exactly once, with its `seq`.
async fn hellos_and_signals_through_two_instances_at_once(table: Arc<dyn Table>) {
    let pair = Pair::new(table).await;
    let (id, client, host) = pair.session().await;
    futures_util::future::join_all([
        pair.hello(0, &client),
        pair.hello(1, &client),
        pair.hello(0, &host),
        pair.hello(1, &host),
    ])
    .await;
    for side in [&client, &host] {
        assert_eq!(pair.gateway.of_type(side, "peer_joined").len(), 1, "{side}: joined once");
    }
    let session = pair.stored(&id).await;
    assert_eq!(session.state, SessionState::Active);
    assert_eq!((session.client_conn.as_ref(), session.host_conn.as_ref()), (Some(&client), Some(&host)));
    assert_eq!(pair.link_of(&client).await, Some((host.clone(), false)));
    assert_eq!(pair.link_of(&host).await, Some((client.clone(), false)));
    futures_util::future::join(pair.burst(&client, 0, 40), pair.burst(&host, 0, 40)).await;
    once_each(pair.gateway.seqs(&host), 0, 40, "client to host");
    once_each(pair.gateway.seqs(&client), 0, 40, "host to client");
}

/// The host joins (through one instance) while the client's signals run through both: each
/// signal, buffered or direct, reaches the host exactly once.
async fn signals_while_the_peer_joins_through_two_instances(table: Arc<dyn Table>) {
    let pair = Pair::new(table).await;
    for _ in 0..4 {
        let (_, client, host) = pair.session().await;
        pair.hello(0, &client).await;
        futures_util::future::join(pair.burst(&client, 0, 30), pair.hello(1, &host)).await;
        once_each(pair.gateway.seqs(&host), 0, 30, "buffered or direct");
        assert_eq!(pair.link_of(&host).await, Some((client.clone(), false)), "linked, drained");
    }
}

/// The client's `$disconnect` runs while its last signals do: none arrives twice, the host
/// is told `peer_left` once and unlinked, the session idles. The host's next signals wait for
/// the client, which comes back and gets each exactly once.
async fn a_client_leaving_while_its_signals_run(table: Arc<dyn Table>) {
    let pair = Pair::new(table).await;
    let (id, client, host) = pair.session().await;
    pair.hello(0, &client).await;
    pair.hello(1, &host).await;
    futures_util::future::join(pair.burst(&client, 0, 20), pair.leave(1, &client)).await;
    let mut got = pair.gateway.seqs(&host);
    got.sort_unstable();
    got.dedup();
    assert_eq!(got.len(), pair.gateway.seqs(&host).len(), "no signal twice");
    assert_eq!(pair.gateway.of_type(&host, "peer_left").len(), 1);
    let session = pair.stored(&id).await;
    assert_eq!((session.state, session.client_conn), (SessionState::Idle, None));
    assert_eq!(pair.link_of(&host).await, Some((String::new(), false)));

    pair.burst(&host, 100, 10).await;
    let ticket = pair.sessions().ticket(&id, Side::Client).await.unwrap();
    pair.connect(0, "client-back", &ticket).await;
    pair.hello(1, "client-back").await;
    assert_eq!(pair.gateway.of_type("client-back", "peer_joined").len(), 1);
    once_each(pair.gateway.seqs("client-back"), 100, 110, "waited for the client");
}

/// The host's `$disconnect` runs while the client's signals do: the session ends once (the
/// client told once), and what it held is given back once.
async fn a_host_leaving_while_the_client_signals(table: Arc<dyn Table>) {
    let pair = Pair::new(table).await;
    let (id, client, host) = pair.session().await;
    pair.hello(0, &client).await;
    pair.hello(1, &host).await;
    futures_util::future::join(pair.burst(&client, 0, 20), pair.leave(0, &host)).await;
    assert_eq!(pair.gateway.of_type(&client, "session_ended").len(), 1);
    let session = pair.stored(&id).await;
    assert_eq!((session.state, session.ended_reason.as_deref()), (SessionState::Stopped, Some("host_left")));
    let usage = Quotas::new(pair.table.as_ref()).usage("bob").await.unwrap();
    assert_eq!(usage.sessions, 0);
    let instances = pair.table.get(&Key::new("USER#bob", "APPINST#viewer")).await.unwrap().unwrap();
    assert_eq!(instances.n("live"), Some(0));
}

/// A client's hello and its own `$disconnect`, run at once in two instances, decided both
/// ways on purpose: the disconnect done before the hello writes the session, and between the
/// hello's write and its linking the host. Either way the session ends idle, the host is not
/// left linked to the closed connection, and what the host sends meanwhile waits for the
/// client, which can come back (a connected client would block a new ticket).
async fn a_hello_racing_its_own_disconnect(table: Arc<dyn Table>) {
    let pair = Pair::new(table).await;
    let races = [("put", "SESSIONS#".to_owned(), 0), ("get", "CONN#client-".to_owned(), 1)];
    for (op, pk, skip) in races {
        let (id, client, host) = pair.session().await;
        pair.hello(1, &host).await;
        let (reached, go) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let pause = Pause { op, pk: pk.clone(), skip, reached: Arc::clone(&reached), go: Arc::clone(&go) };
        *pair.gated.pause.lock().unwrap() = Some(pause);
        let (hello, leave) = (pair.hello(0, &client), async {
            reached.notified().await;
            pair.leave(1, &client).await;
            go.notify_one();
        });
        futures_util::future::join(hello, leave).await;
        let what = format!("the disconnect during the hello's {op} of {pk}");
        let session = pair.stored(&id).await;
        assert_eq!((session.state, session.client_conn.as_ref()), (SessionState::Idle, None), "{what}");
        assert_eq!(pair.link_of(&host).await, Some((String::new(), false)), "{what}: the host is unlinked");
        let left = pair.gateway.of_type(&host, "peer_left").len();
        let joined = pair.gateway.of_type(&host, "peer_joined").len();
        assert_eq!(left, joined, "{what}: the host is told the client left, if it was told it came");

        pair.burst(&host, 0, 5).await;
        let back = format!("back-{id}");
        let ticket = pair.sessions().ticket(&id, Side::Client).await.unwrap();
        pair.connect(0, &back, &ticket).await;
        pair.hello(1, &back).await;
        assert_eq!(pair.stored(&id).await.state, SessionState::Active, "{what}");
        once_each(pair.gateway.seqs(&back), 0, 5, &what);
    }
}

on_both_stores! {
    multi_thread:
    hellos_and_signals_through_two_instances_at_once,
    signals_while_the_peer_joins_through_two_instances,
    a_client_leaving_while_its_signals_run,
    a_host_leaving_while_the_client_signals,
    a_hello_racing_its_own_disconnect,
}
