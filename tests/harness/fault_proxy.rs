//! A TCP fault proxy on 127.0.0.1 in front of an HTTP/1.1 server (DynamoDB Local, a fake
//! streaming platform): it passes requests through, or drops, holds or resets them, as the
//! test switches it at run time. Stopped when dropped.
//!
//! Each client connection carries one request (the proxy asks the server to close after
//! answering, and says so to the client), so the proxy knows where every request begins and
//! ends, numbers them, and can fault exactly the ones a [`Plan`] names: "pass the next 3, then
//! cut the answers of the next 3, then pass" puts a fault on one chosen step of a multi-step
//! write.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What happens to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded, and the answer returned.
    Pass,
    /// Accepted, then closed without an answer (a server that crashed).
    Drop,
    /// Forwarded, and the answer held this long before it is returned (a server that hangs;
    /// choose longer than the client waits). The server did the work.
    Delay(Duration),
    /// Half the request forwarded, then both connections reset (RST): the server never saw it
    /// whole.
    ResetRequest,
    /// The whole request forwarded, half the answer returned, then the client's connection
    /// reset: the server did the work, the client never learns it.
    ResetAnswer,
}

/// Which requests get which fault, counted from the next one: segments in order, each some
/// number of requests (or all the rest) meeting one fault; past the last, requests pass.
/// `Plan::pass(3).then(3, Fault::ResetAnswer).always(Fault::Drop)`: three pass, three have
/// their answers cut, then none is answered.
#[derive(Clone, Debug)]
pub struct Plan {
    segments: Vec<(Option<u64>, Fault)>,
}

impl Plan {
    /// The next `n` requests pass.
    pub fn pass(n: u64) -> Plan {
        Plan { segments: vec![(Some(n), Fault::Pass)] }
    }

    /// Then `n` requests meet `fault`.
    pub fn then(mut self, n: u64, fault: Fault) -> Plan {
        self.segments.push((Some(n), fault));
        self
    }

    /// Then every request meets `fault`.
    pub fn always(mut self, fault: Fault) -> Plan {
        self.segments.push((None, fault));
        self
    }

    /// The fault of the `k`-th request (from 0) since the plan was set.
    fn fault(&self, mut k: u64) -> Fault {
        for (count, fault) in &self.segments {
            match count {
                Some(n) if k >= *n => k -= n,
                _ => return *fault,
            }
        }
        Fault::Pass
    }
}

struct State {
    plan: Plan,
    /// The number of the first request the plan counts from.
    from: u64,
}

struct Shared {
    state: Mutex<State>,
    /// Requests seen (whole request heads read).
    seen: AtomicU64,
    /// Requests that met a fault.
    faulted: AtomicU64,
    upstream: String,
}

impl Shared {
    fn decide(&self) -> Fault {
        let n = self.seen.fetch_add(1, Ordering::SeqCst);
        let state = self.state.lock().unwrap();
        let Some(k) = n.checked_sub(state.from) else { return Fault::Pass };
        let fault = state.plan.fault(k);
        if fault != Fault::Pass {
            self.faulted.fetch_add(1, Ordering::SeqCst);
        }
        fault
    }
}

/// The proxy; see the module.
pub struct FaultProxy {
    pub addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// A proxy to `upstream` (`http://127.0.0.1:PORT` or `127.0.0.1:PORT`), passing everything.
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::new(State { plan: Plan::pass(0), from: 0 }),
            seen: AtomicU64::new(0),
            faulted: AtomicU64::new(0),
            upstream,
        });
        let serving = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            // Connection tasks live in this set: stopping the proxy stops them too.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                while connections.try_join_next().is_some() {}
                connections.spawn(relay(client, Arc::clone(&serving)));
            }
        });
        FaultProxy { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request from now on meets `fault` ([`Fault::Pass`] heals).
    pub fn set(&self, fault: Fault) {
        self.plan(Plan::pass(0).always(fault));
    }

    /// From the next request on, as `plan` says.
    pub fn plan(&self, plan: Plan) {
        let mut state = self.shared.state.lock().unwrap();
        *state = State { plan, from: self.shared.seen.load(Ordering::SeqCst) };
    }

    /// Requests seen so far.
    pub fn requests(&self) -> u64 {
        self.shared.seen.load(Ordering::SeqCst)
    }

    /// Requests that met a fault so far.
    pub fn faulted(&self) -> u64 {
        self.shared.faulted.load(Ordering::SeqCst)
    }
}

/// Resets a connection: RST instead of FIN.
fn reset(stream: TcpStream) {
    // Deprecated because a non-zero linger blocks the thread on drop; a zero one never does.
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn relay(mut client: TcpStream, shared: Arc<Shared>) {
    let Some(request) = read_request(&mut client).await else { return };
    let fault = shared.decide();
    if fault == Fault::Drop {
        return; // closed, unanswered
    }
    let Ok(mut server) = TcpStream::connect(&shared.upstream).await else { return reset(client) };
    if fault == Fault::ResetRequest {
        let _ = server.write_all(&request[..request.len() / 2]).await;
        let _ = server.flush().await;
        reset(server);
        return reset(client);
    }
    if server.write_all(&request).await.is_err() {
        return reset(client);
    }
    // The server closes after its answer (the request says `Connection: close`).
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), server.read_to_end(&mut answer)).await;
    if !matches!(read, Ok(Ok(_))) || answer.is_empty() {
        return reset(client);
    }
    match fault {
        Fault::ResetAnswer => {
            let _ = client.write_all(&answer[..answer.len() / 2]).await;
            let _ = client.flush().await;
            reset(client);
        }
        Fault::Delay(hold) => {
            tokio::time::sleep(hold).await;
            let _ = client.write_all(&answer).await;
        }
        _ => {
            let _ = client.write_all(&answer).await;
            let _ = client.shutdown().await;
        }
    }
}

/// One whole request from `client` (head and `Content-Length` body), rewritten to ask the
/// server to close after answering; `None` when the client closed or sent something else.
async fn read_request(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines: Vec<&str> = head.trim_end().split("\r\n").collect();
    let length = lines
        .iter()
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case("content-length")))
        .map(|(_, v)| v.trim().parse::<usize>())
        .transpose()
        .ok()?
        .unwrap_or(0);
    if lines.iter().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:")) {
        return None; // not sent by the clients this proxy is for
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    lines.retain(|l| !l.to_ascii_lowercase().starts_with("connection:"));
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    out.extend_from_slice(&body[..length]);
    Some(out)
}
