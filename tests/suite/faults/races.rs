//! Quotas under concurrent job submissions, on both stores.

use std::sync::Arc;
use std::time::Duration;

use portico_core::store::Table;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::recipe;
use crate::jobs::Farm;

/// Fifty `POST /jobs` at once against a `jobs` quota of three: exactly three are accepted
/// (and three workflows made), every other is 409 `quota_exceeded`, and usage is three, held
/// by the three jobs listed.
async fn fifty_concurrent_submissions_against_a_quota_of_three(table: Arc<dyn Table>) {
    let farm = Arc::new(Farm::on(table, |c| c.quota_jobs = 3).await);
    // The workflows stay unfinished for the whole test: the quota stays taken.
    *farm.argo.timing.lock().unwrap() = (Duration::from_secs(600), Duration::from_secs(600));
    let body = json!({"recipe": recipe()["recipe"], "resources": {"cpu": 100}});
    let start = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (farm, body, start) = (Arc::clone(&farm), body.clone(), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                farm.submit("carol", None, &body).await
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (StatusCode::CREATED, job) => accepted.push(job["id"].as_str().unwrap().to_owned()),
            (status, body) => {
                assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("quota_exceeded")), "{body}")
            }
        }
    }
    assert_eq!(accepted.len(), 3, "exactly the quota");
    assert_eq!(farm.argo.created(), 3, "one workflow per accepted job, none for the refused");
    let (_, me) = farm.call(Method::GET, "/auth/me", "carol", None).await;
    assert_eq!((me["usage"]["jobs"].as_i64(), me["usage"]["cpu"].as_i64()), (Some(3), Some(300)), "{me}");
    let (_, mine) = farm.call(Method::GET, "/jobs", "carol", None).await;
    let mut listed: Vec<String> =
        mine["items"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_owned()).collect();
    listed.sort();
    accepted.sort();
    assert_eq!(listed, accepted, "the refused left no record");
    // Cancelling one makes room for exactly one more.
    let (status, _) = farm.call(Method::DELETE, &format!("/jobs/{}", accepted[0]), "carol", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(farm.submit("carol", None, &body).await.0, StatusCode::CREATED);
    assert_eq!(farm.submit("carol", None, &body).await.0, StatusCode::CONFLICT);
    assert_eq!(farm.jobs_in_use("carol").await, 3);
}

on_both_stores! {
    multi_thread:
    fifty_concurrent_submissions_against_a_quota_of_three,
}
