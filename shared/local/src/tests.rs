//! Unit tests of the HTTP API's routing and payload limits.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use portico_core::web::{ApiRequest, ApiResponse, RouteGroup, json as json_response};
use portico_core::{Config, Error};
use serde_json::{Value, json};

use crate::HttpApi;

/// A route group: its name, its route keys, and its answer.
struct Fake(&'static str, &'static [&'static str], Box<dyn Fn(&ApiRequest) -> ApiResponse + Send + Sync>, Config);

#[async_trait::async_trait]
impl RouteGroup for Fake {
    fn name(&self) -> &'static str {
        self.0
    }
    fn route_keys(&self) -> Vec<String> {
        self.1.iter().map(|k| k.to_string()).collect()
    }
    fn config(&self) -> &Config {
        &self.3
    }
    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        Ok((self.2)(req))
    }
}

/// Answers with its name and the request's path parameters, as the function saw them.
fn echo(name: &'static str, keys: &'static [&'static str]) -> Arc<dyn RouteGroup> {
    let answer = move |req: &ApiRequest| {
        use lambda_http::RequestExt;
        let params: BTreeMap<String, String> =
            req.path_parameters().iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        json_response(StatusCode::OK, &json!({"group": name, "params": params}))
    };
    Arc::new(Fake(name, keys, Box::new(answer), Config::default()))
}

/// `ANY /big`, answering with a body of `body` bytes and a header of `header` bytes.
fn big(body: usize, header: usize) -> Arc<dyn RouteGroup> {
    let answer = move |_: &ApiRequest| {
        let mut r = http::Response::new("a".repeat(body));
        r.headers_mut().insert("x-pad", "p".repeat(header).parse().unwrap());
        r
    };
    Arc::new(Fake("big", &["ANY /big"], Box::new(answer), Config::default()))
}

async fn call(api: &HttpApi, method: Method, path: &str) -> (StatusCode, Value) {
    call_with(api, method, path, Bytes::new()).await
}

async fn call_with(api: &HttpApi, method: Method, path: &str, body: Bytes) -> (StatusCode, Value) {
    let uri: http::Uri = path.parse().unwrap();
    let here = "127.0.0.1:9".parse().unwrap();
    let r = api.invoke(&method, &uri, &HeaderMap::new(), body, here, here).await;
    (r.status(), serde_json::from_slice(r.body()).unwrap_or(Value::Null))
}

#[tokio::test]
async fn routes_match_the_path_as_api_gateway_decodes_it() {
    let api = HttpApi::new(vec![
        echo("apps", &["ANY /apps/{proxy+}"]),
        echo("users", &["GET /users/{id}", "ANY /users/{proxy+}"]),
    ]);
    let (_, b) = call(&api, Method::GET, "/apps/usd%2Dvalidate").await;
    assert_eq!(b["params"], json!({"proxy": "usd-validate"}));
    let (_, b) = call(&api, Method::GET, "/users/caf%C3%A9").await;
    assert_eq!(b["params"], json!({"id": "café"}), "path parameters are decoded");
    let (_, b) = call(&api, Method::GET, "/users/a%2Fb").await;
    assert_eq!(b["params"], json!({"proxy": "a/b"}), "a decoded '/' separates segments");
    let (s, b) = call(&api, Method::GET, "/users/%FF").await;
    assert_eq!((s, &b["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_path")));
}

#[tokio::test]
async fn lambdas_payload_limits_apply_to_the_event_and_to_the_response() {
    let api = HttpApi::new(vec![echo("echo", &["ANY /echo"])]);
    // The event's JSON carries the body escaped: 3.2 MB of quotes are 6.4 MB in it.
    let quotes = Bytes::from(vec![b'"'; 3_200_000]);
    let (s, b) = call_with(&api, Method::POST, "/echo", quotes).await;
    assert_eq!((s, &b["code"]), (StatusCode::PAYLOAD_TOO_LARGE, &json!("payload_too_large")), "{b}");
    let (s, _) = call_with(&api, Method::POST, "/echo", Bytes::from(vec![b'a'; 6_000_000])).await;
    assert_eq!(s, StatusCode::OK, "under the limit with the rest of the event");

    let body = portico_core::lambda::MAX_RESPONSE_BYTES - 10;
    assert_eq!(call(&HttpApi::new(vec![big(body, 1024)]), Method::GET, "/big").await.0, StatusCode::OK);
    let (s, b) = call(&HttpApi::new(vec![big(body, 20 * 1024)]), Method::GET, "/big").await;
    assert_eq!((s, b), (StatusCode::INTERNAL_SERVER_ERROR, json!({"message": "Internal Server Error"})));
}

#[tokio::test]
async fn routes_are_chosen_as_api_gateway_chooses_them() {
    let api = HttpApi::new(vec![
        echo("apps", &["ANY /apps", "ANY /apps/{proxy+}"]),
        echo("users", &["GET /users/{id}", "ANY /users/{proxy+}"]),
    ]);
    let (s, b) = call(&api, Method::GET, "/apps").await;
    assert_eq!((s, b["group"].as_str()), (StatusCode::OK, Some("apps")));
    let (_, b) = call(&api, Method::PUT, "/apps/a/b").await;
    assert_eq!(b["params"], json!({"proxy": "a/b"}));
    let (_, b) = call(&api, Method::GET, "/users/7").await;
    assert_eq!(b["params"], json!({"id": "7"}), "an exact route beats a greedy one");
    let (_, b) = call(&api, Method::DELETE, "/users/7").await;
    assert_eq!(b["params"], json!({"proxy": "7"}), "a method-specific route only takes its method");
    let (_, b) = call(&api, Method::POST, "/users/7").await;
    assert_eq!(b["group"], "users");
    let shadowing = HttpApi::new(vec![echo("admin", &["ANY /admin/{proxy+}"]), echo("pairs", &["POST /{a}/{b}"])]);
    let (_, b) = call(&shadowing, Method::POST, "/admin/users").await;
    assert_eq!(b["group"], "pairs", "a full match beats a greedy one with more literals");
    let (s, b) = call(&api, Method::GET, "/elsewhere").await;
    assert_eq!((s, b), (StatusCode::NOT_FOUND, json!({"message": "Not Found"})), "API Gateway's own 404");

    let api = HttpApi::new(vec![echo("fallback", &["$default"]), echo("apps", &["ANY /apps"])]);
    assert_eq!(call(&api, Method::GET, "/elsewhere").await.1["group"], "fallback");
    assert_eq!(call(&api, Method::GET, "/apps").await.1["group"], "apps");
}
