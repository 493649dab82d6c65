//! What operators rely on: a health route that touches nothing, and one log line per request
//! carrying the id the client sees in `X-Request-Id`.

use std::sync::Arc;

use portico_core::store::memory::MemoryTable;
use portico_tests::{TestApi, captured_logs, test_config};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn health_answers_without_a_token_or_the_store() {
    let api = TestApi::start(Arc::new(MemoryTable::new()), test_config()).await;
    api.calls.take();
    let r = api.req(Method::GET, "/healthz", None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap(), serde_json::json!({"status": "ok"}));
    assert_eq!(api.calls.take().total(), 0, "no storage call");
}

#[tokio::test]
async fn each_answer_carries_the_request_id_its_log_line_has() {
    let api = TestApi::start(Arc::new(MemoryTable::new()), test_config()).await;
    let r = api.req(Method::GET, "/apps/nowhere", Some(&api.admin_token())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "API Gateway's request id: {id}");
    let logs = captured_logs();
    let line = logs.lines().find(|l| l.contains(&id)).unwrap_or_else(|| panic!("no log line for {id}"));
    for field in
        ["function=\"apps\"", "principal=ada", "route=ANY /apps/{proxy+}", "status=404", "path=\"/apps/nowhere\""]
    {
        assert!(line.contains(field) || line.contains(&field.replace('"', "")), "{field} in {line}");
    }
    assert!(!line.contains(&api.admin_token()), "never the token");
}
