//! Optimistic concurrency under load, on both stores: many editors holding the same `ETag`
//! replace one app at the same moment; exactly one wins and nothing is lost silently.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use portico_core::store::{Item, Key, StoreError, Table};
use portico_tests::{Intercept, Intercepted, TestApi, app_body, test_config};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Barrier;

const EDITORS: usize = 100;

/// A store whose reads of one key, while a gate is set, wait until every editor has read it:
/// all of them then hold the same revision, and the race is decided by the store's
/// conditional write alone, not by which request the scheduler happened to run first.
struct ReadTogether {
    inner: Arc<dyn Table>,
    key: Key,
    gate: Mutex<Option<Arc<Barrier>>>,
}

#[async_trait::async_trait]
impl Intercept for ReadTogether {
    fn inner(&self) -> &dyn Table {
        self.inner.as_ref()
    }
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let read = self.inner.get(key).await;
        let gate = if *key == self.key { self.gate.lock().unwrap().clone() } else { None };
        if let Some(gate) = gate {
            // Bounded, so that a request lost on the way fails the test instead of hanging it.
            tokio::time::timeout(Duration::from_secs(20), gate.wait()).await.expect("every editor reads the app");
        }
        read
    }
}

/// 100 concurrent `PUT /apps/{slug}` with the same `If-Match`: exactly one 200, 99 × 412
/// `precondition_failed`, and the stored app is the winner's body under the winner's `ETag`.
async fn one_of_many_editors_wins(table: Arc<dyn Table>) {
    let store =
        Arc::new(Intercepted(ReadTogether { inner: table, key: Key::new("APP", "contested"), gate: Mutex::new(None) }));
    let api = Arc::new(TestApi::start(store.clone(), test_config()).await);
    let admin = api.admin_token();
    let created = api.req(Method::PUT, "/apps/contested", Some(&admin)).json(&app_body("contested")).send().await;
    let created = created.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let etag = created.headers()["etag"].to_str().unwrap().to_owned();

    api.calls.take();
    *store.gate.lock().unwrap() = Some(Arc::new(Barrier::new(EDITORS)));
    // Every editor is ready before any sends: the requests overlap as much as they can.
    let start = Arc::new(tokio::sync::Barrier::new(EDITORS));
    let mut editors = tokio::task::JoinSet::new();
    for n in 0..EDITORS {
        let (api, admin, etag, start) = (Arc::clone(&api), admin.clone(), etag.clone(), Arc::clone(&start));
        editors.spawn(async move {
            let mut body = app_body("contested");
            body["title"] = json!(format!("Edited by editor {n}"));
            body["version"] = json!(format!("v{n}"));
            let request = api.req(Method::PUT, "/apps/contested", Some(&admin)).header("if-match", &etag).json(&body);
            start.wait().await;
            let r = request.send().await.expect("the emulator answers");
            let status = r.status();
            let new_etag = r.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
            let answer: Value = r.json().await.expect("a JSON answer");
            (n, status, new_etag, answer)
        });
    }
    let answers = editors.join_all().await;
    *store.gate.lock().unwrap() = None;
    // Each request read the app once, all before any wrote, and each tried its conditional
    // write: the store let exactly one through.
    let calls = api.calls.take();
    assert_eq!((calls.get, calls.put), (EDITORS as u64, EDITORS as u64), "{calls:?}");

    let winners: Vec<_> = answers.iter().filter(|(_, s, _, _)| *s == StatusCode::OK).collect();
    assert_eq!(winners.len(), 1, "exactly one editor wins: {:?}", answers.iter().map(|a| a.1).collect::<Vec<_>>());
    let (winner, _, winner_etag, winner_answer) = winners[0];
    for (n, status, _, answer) in &answers {
        if n != winner {
            assert_eq!(*status, StatusCode::PRECONDITION_FAILED, "editor {n}: {answer}");
            assert_eq!(answer["code"], "precondition_failed", "editor {n}: {answer}");
        }
    }
    assert_eq!(winner_answer["title"], format!("Edited by editor {winner}"));

    let stored = api.req(Method::GET, "/apps/contested", Some(&admin)).send().await.unwrap();
    assert_eq!(stored.status(), StatusCode::OK);
    assert_eq!(stored.headers()["etag"].to_str().unwrap(), winner_etag.as_deref().unwrap());
    assert_ne!(winner_etag.as_deref(), Some(etag.as_str()));
    let stored: Value = stored.json().await.unwrap();
    assert_eq!(&stored, winner_answer);
    assert_eq!(stored["title"], format!("Edited by editor {winner}"));
    assert_eq!(stored["version"], format!("v{winner}"));
}

on_both_stores! {
    multi_thread:
    a_hundred_editors_with_one_etag_make_one_winner => one_of_many_editors_wins,
}
