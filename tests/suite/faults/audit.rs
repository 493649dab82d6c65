//! What "nothing half-written" means, checked on a table read directly (a Scan of a test's own
//! table, bypassing Portico and any proxy):
//!
//! - each user's usage counts exactly the live sessions and unfinished jobs that hold it
//!   (sessions, jobs, cpu, memory, storage), and names exactly them as holders;
//! - each app's live-instance counter counts, and names, exactly the user's live sessions of it;
//! - a live marker for every live session and no other; an active marker for every
//!   unfinished job and no other;
//! - every ticket names a session that exists; every finished idempotency key, a job.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::AttributeValue;
use portico_core::store::now_epoch;
use portico_jobs::service::Job;
use portico_streaming::{Session, SessionState};

type Row = std::collections::HashMap<String, AttributeValue>;

fn s<'a>(row: &'a Row, name: &str) -> Option<&'a str> {
    row.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn n(row: &Row, name: &str) -> i64 {
    row.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Every live item of the table (expired ones read as absent, as Portico reads them).
async fn scan(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<Row> {
    let now = now_epoch();
    let mut rows = Vec::new();
    let mut start = None;
    loop {
        let page = client.scan().table_name(table).set_exclusive_start_key(start).send().await.expect("a Scan");
        rows.extend(page.items().iter().filter(|r| !r.contains_key("ttl") || n(r, "ttl") > now).cloned());
        match page.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return rows,
        }
    }
}

/// Holder flags of a counter item (`held:<id>`).
fn holders(row: &Row) -> BTreeSet<String> {
    row.keys().filter_map(|k| k.strip_prefix("held:")).map(str::to_owned).collect()
}

/// The problems found, one line each; empty when the table is whole.
pub(crate) async fn audit(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<String> {
    let rows = scan(client, table).await;
    let mut problems = Vec::new();
    let (mut sessions, mut jobs) = (BTreeMap::<String, Session>::new(), BTreeMap::<String, Job>::new());
    let (mut live_markers, mut active_markers) = (BTreeSet::new(), BTreeSet::new());
    let (mut usage, mut instances) = (BTreeMap::new(), BTreeMap::new());
    let (mut tickets, mut keys) = (Vec::new(), Vec::new());
    for row in &rows {
        let (pk, sk) = (s(row, "pk").unwrap_or_default(), s(row, "sk").unwrap_or_default());
        let doc = s(row, "doc").unwrap_or("null");
        if pk.starts_with("SESSIONS#") {
            sessions.insert(sk.to_owned(), serde_json::from_str(doc).expect("a session record"));
        } else if pk.starts_with("JOBS#") {
            jobs.insert(sk.to_owned(), serde_json::from_str(doc).expect("a job record"));
        } else if pk == "LIVE_SESSIONS" {
            live_markers.insert(sk.to_owned());
        } else if pk == "ACTIVE_JOBS" {
            active_markers.insert(sk.to_owned());
        } else if pk.starts_with("TICKET#") {
            tickets.push(s(row, "session").unwrap_or_default().to_owned());
        } else if let Some(user) = pk.strip_prefix("USER#") {
            if sk == "USAGE" {
                usage.insert(user.to_owned(), row.clone());
            } else if let Some(app) = sk.strip_prefix("APPINST#") {
                instances.insert((user.to_owned(), app.to_owned()), row.clone());
            }
        } else if pk.starts_with("IDEM#") && s(row, "state") == Some("done") {
            keys.push(s(row, "job").unwrap_or_default().to_owned());
        }
    }
    let live: BTreeMap<&String, &Session> = sessions.iter().filter(|(_, s)| s.state != SessionState::Stopped).collect();
    let unfinished: BTreeMap<&String, &Job> = jobs.iter().filter(|(_, j)| !j.phase.is_final()).collect();

    let users: BTreeSet<String> = usage
        .keys()
        .cloned()
        .chain(live.values().map(|s| s.owner.clone()))
        .chain(unfinished.values().map(|j| j.owner.clone()))
        .collect();
    for user in &users {
        let row = usage.get(user).cloned().unwrap_or_default();
        let mine: Vec<&&Session> = live.values().filter(|s| s.owner == *user).collect();
        let theirs: Vec<&&Job> = unfinished.values().filter(|j| j.owner == *user).collect();
        let sum = |f: fn(&Job) -> i64| theirs.iter().map(|j| f(j)).sum::<i64>();
        let expected = [
            ("sessions", mine.len() as i64),
            ("jobs", theirs.len() as i64),
            ("cpu", sum(|j| j.resources.cpu)),
            ("memory", sum(|j| j.resources.memory)),
            ("storage", sum(|j| j.resources.storage)),
        ];
        for (name, want) in expected {
            if n(&row, name) != want {
                problems.push(format!("{user}: usage {name} is {}, but {want} live records hold it", n(&row, name)));
            }
        }
        let want: BTreeSet<String> =
            mine.iter().map(|s| s.id.clone()).chain(theirs.iter().map(|j| j.id.clone())).collect();
        if holders(&row) != want {
            problems.push(format!("{user}: usage is held by {:?}, but the live records are {want:?}", holders(&row)));
        }
    }
    let apps: BTreeSet<(String, String)> =
        instances.keys().cloned().chain(live.values().map(|s| (s.owner.clone(), s.app.clone()))).collect();
    for (user, app) in apps {
        let row = instances.get(&(user.clone(), app.clone())).cloned().unwrap_or_default();
        let want: BTreeSet<String> =
            live.values().filter(|s| s.owner == user && s.app == app).map(|s| s.id.clone()).collect();
        if n(&row, "live") != want.len() as i64 || holders(&row) != want {
            problems.push(format!(
                "{user}/{app}: {} live instance(s) held by {:?}, but the live sessions are {want:?}",
                n(&row, "live"),
                holders(&row)
            ));
        }
    }
    let live_ids: BTreeSet<String> = live.keys().map(|k| (*k).clone()).collect();
    if live_markers != live_ids {
        problems.push(format!("live markers {live_markers:?}, but live sessions {live_ids:?}"));
    }
    let unfinished_ids: BTreeSet<String> = unfinished.keys().map(|k| (*k).clone()).collect();
    if active_markers != unfinished_ids {
        problems.push(format!("active markers {active_markers:?}, but unfinished jobs {unfinished_ids:?}"));
    }
    for session in tickets.iter().filter(|t| !sessions.contains_key(*t)) {
        problems.push(format!("a ticket names session {session}, which does not exist"));
    }
    for job in keys.iter().filter(|k| !jobs.contains_key(*k)) {
        problems.push(format!("a finished idempotency key names job {job}, which does not exist"));
    }
    problems
}
