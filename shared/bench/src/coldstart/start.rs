//! One start of a function binary against the Runtime API stand-in, and what it measured.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::inputs::{Outside, environment};
use super::runtime_api::{Kind, Posted, RuntimeApi};
use crate::functions::Function;
use crate::requests::rss_kb;

/// One start's figures.
pub(super) struct Start {
    pub(super) init: Duration,
    pub(super) first_answer: Duration,
    pub(super) peak_kb: u64,
    pub(super) warm: Vec<Duration>,
    /// The first answer: its HTTP status, else its body.
    pub(super) answer: String,
}

/// The end of the function's log, to explain a failure.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let start = text.len().saturating_sub(2000);
    text.get(start..).unwrap_or(&text).to_owned()
}

/// Starts `binary` once, hands it `event`, then each of `warm`; kills it.
pub(super) async fn start_once(
    f: &Function,
    binary: &Path,
    event: &[u8],
    warm: &[Vec<u8>],
    outside: &Outside,
    dir: &Path,
) -> Result<Start, String> {
    let mut api = RuntimeApi::start(&format!("portico-{}", f.bin)).await.map_err(|e| e.to_string())?;
    let log_path = dir.join(format!("{}.log", f.bin));
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let err_log = log.try_clone().map_err(|e| e.to_string())?;
    api.events.send(event.to_vec()).expect("the stand-in is up");
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .envs(environment(f, &api.address, outside))
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let pid = child.id().unwrap_or(0);
    let failed = |why: String| format!("{}: {why}\n--- its output ---\n{}", f.bin, log_tail(&log_path));
    let posted = tokio::select! {
        p = api.posted.recv() => p.ok_or_else(|| failed("the stand-in stopped".into()))?,
        status = child.wait() => return Err(failed(format!("exited before answering ({status:?})"))),
        _ = tokio::time::sleep(Duration::from_secs(30)) => return Err(failed("no answer within 30 s".into())),
    };
    let first_answer = posted.at - started;
    let init = api.shared.first_next.get().map_or(first_answer, |t| *t - started);
    let (_, peak_kb) = rss_kb(pid);
    check(&posted).map_err(failed)?;
    let value: Value = serde_json::from_slice(&posted.body).unwrap_or(Value::Null);
    let answer = match value["statusCode"].as_u64() {
        Some(status) => status.to_string(),
        None => String::from_utf8_lossy(&posted.body).chars().take(40).collect(),
    };
    let mut warm_times = Vec::with_capacity(warm.len());
    for warm_event in warm {
        let t = Instant::now();
        api.events.send(warm_event.clone()).expect("the stand-in is up");
        let posted = tokio::time::timeout(Duration::from_secs(30), api.posted.recv())
            .await
            .map_err(|_| failed("no warm answer within 30 s".into()))?
            .ok_or_else(|| failed("the stand-in stopped".into()))?;
        warm_times.push(posted.at - t);
        check(&posted).map_err(failed)?;
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    Ok(Start { init, first_answer, peak_kb, warm: warm_times, answer })
}

/// A posted response that is not an error nor a 5xx.
fn check(posted: &Posted) -> Result<(), String> {
    let text = String::from_utf8_lossy(&posted.body);
    if posted.kind != Kind::Response {
        return Err(format!("posted {:?}: {text}", posted.kind));
    }
    let value: Value = serde_json::from_slice(&posted.body).unwrap_or(Value::Null);
    match value["statusCode"].as_u64() {
        Some(s) if s >= 500 => Err(format!("answered {s}: {text}")),
        _ => Ok(()),
    }
}
