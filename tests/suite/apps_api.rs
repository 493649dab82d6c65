//! The apps catalog through the emulator, as a client sees it: the the Omniverse portal sample session,
//! authorization, bad input, conditional writes, pagination, CORS and storage calls per route.

use std::sync::Arc;

use portico_core::store::counting::Calls;
use portico_core::store::memory::MemoryTable;
use portico_core::{Config, store::Table};
use portico_tests::{TestApi, app_body, dynamo_table, mint_hs256, test_config, web_token};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn memory_api(config: Config) -> TestApi {
    TestApi::start(Arc::new(MemoryTable::new()), config).await
}

async fn body(r: reqwest::Response) -> Value {
    r.json().await.expect("JSON body")
}

/// Sends `request`, then asserts a JSON error with `status` and `code`.
async fn expect_error(request: reqwest::RequestBuilder, status: StatusCode, code: &str) {
    assert_error(request.send().await.unwrap(), status, code).await;
}

/// Asserts a JSON error with `status` and `code`, and a human message.
async fn assert_error(r: reqwest::Response, status: StatusCode, code: &str) {
    assert_eq!(r.status(), status, "for expected code {code}");
    assert_eq!(r.headers()["content-type"], "application/json");
    let b = body(r).await;
    assert_eq!(b["code"], code, "{b}");
    assert!(b["message"].as_str().is_some_and(|m| !m.is_empty()), "{b}");
}

async fn seed_session(table: Arc<dyn Table>) {
    let api = TestApi::start(table, test_config()).await;
    let admin = api.admin_token();
    let put = api.req(Method::PUT, "/apps/usd-validate", Some(&admin)).json(&app_body("usd-validate")).send().await;
    let put = put.unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(put.headers()["location"], "/apps/usd-validate");
    let etag = put.headers()["etag"].to_str().unwrap().to_owned();
    let created = body(put).await;
    assert_eq!(created["title"], "USD Validate");
    assert_eq!(created["published_at"], created["updated_at"]);

    // The seed lists with a trailing slash.
    let list = body(api.req(Method::GET, "/apps/", Some(&admin)).send().await.unwrap()).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["slug"], "usd-validate");
    assert_eq!(list["next"], Value::Null);

    let get = api.req(Method::GET, "/apps/usd-validate", Some(&api.user_token())).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(get.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(body(get).await, created);

    let del = api.req(Method::DELETE, "/apps/usd-validate", Some(&admin)).send().await.unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    expect_error(api.req(Method::GET, "/apps/usd-validate", Some(&admin)), StatusCode::NOT_FOUND, "not_found").await;
    expect_error(api.req(Method::DELETE, "/apps/usd-validate", Some(&admin)), StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn seed_session_on_the_embedded_store() {
    seed_session(Arc::new(MemoryTable::new())).await;
}

#[tokio::test]
async fn seed_session_on_dynamodb_local() {
    seed_session(Arc::new(dynamo_table().await)).await;
}

#[tokio::test]
async fn who_may_call_each_route() {
    let api = memory_api(test_config()).await;
    let admin = api.admin_token();
    api.req(Method::PUT, "/apps/a", Some(&admin)).json(&app_body("a")).send().await.unwrap();
    let expired = mint_hs256(
        portico_tests::SECRET.as_bytes(),
        &json!({"sub": "ada", "groups": ["admin"], "exp": portico_core::store::now_epoch() - 600}),
    );
    let forged = mint_hs256(
        b"not-the-secret-not-the-secret-not-the-secret",
        &json!({"sub": "eve", "groups": ["admin"], "exp": portico_core::store::now_epoch() + 600}),
    );
    let wrong_group = web_token("mallory", &["administrators"]);
    // (method, path, with body) x (caller) -> status. Reads: any valid bearer; writes: admins.
    let routes = [
        (Method::GET, "/apps", false),
        (Method::GET, "/apps/a", false),
        (Method::PUT, "/apps/b", true),
        (Method::DELETE, "/apps/a", false),
    ];
    let callers: [(&str, Option<String>, [u16; 4]); 6] = [
        ("anonymous", None, [401, 401, 401, 401]),
        ("expired admin", Some(expired), [401, 401, 401, 401]),
        ("forged admin", Some(forged), [401, 401, 401, 401]),
        ("plain user", Some(api.user_token()), [200, 200, 403, 403]),
        ("user in a look-alike group", Some(wrong_group), [200, 200, 403, 403]),
        ("admin", Some(admin.clone()), [200, 200, 201, 204]),
    ];
    for (who, tok, expected) in &callers {
        for ((method, path, with_body), want) in routes.iter().zip(expected) {
            let mut r = api.req(method.clone(), path, tok.as_deref());
            if *with_body {
                r = r.json(&app_body(path.trim_start_matches("/apps/")));
            }
            let r = r.send().await.unwrap();
            assert_eq!(r.status().as_u16(), *want, "{who}: {method} {path}");
            if *want == 401 {
                assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"portico\"");
            }
        }
    }
    let r = api.http.get(api.url("/apps")).header("authorization", "Basic YTpi").send().await.unwrap();
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_writes_nothing() {
    let mut config = test_config();
    config.max_body_bytes = 4096;
    let api = memory_api(config).await;
    let admin = api.admin_token();
    // The admin's first request records them; count only what the bad requests write.
    api.req(Method::GET, "/apps", Some(&admin)).send().await.unwrap();
    api.calls.take();
    let with = |patch: Value| {
        let mut b = app_body("x");
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b.to_string()
    };
    let cases: Vec<(&str, String, &str, StatusCode, &str)> = vec![
        ("/apps/x", "{not json".into(), "application/json", StatusCode::BAD_REQUEST, "invalid_json"),
        ("/apps/x", "".into(), "application/json", StatusCode::BAD_REQUEST, "invalid_json"),
        ("/apps/x", "[1,2]".into(), "application/json", StatusCode::BAD_REQUEST, "invalid_body"),
        ("/apps/x", with(json!({"title": 5})), "application/json", StatusCode::BAD_REQUEST, "invalid_body"),
        ("/apps/x", with(json!({"owner": "me"})), "application/json", StatusCode::BAD_REQUEST, "invalid_body"),
        (
            "/apps/x",
            json!({"slug": "x", "title": "t"}).to_string(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        ("/apps/x", with(json!({"slug": "y"})), "application/json", StatusCode::BAD_REQUEST, "slug_mismatch"),
        (
            "/apps/Bad_Slug",
            with(json!({"slug": "Bad_Slug"})),
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        ("/apps/-x", with(json!({"slug": "-x"})), "application/json", StatusCode::BAD_REQUEST, "invalid_field"),
        (
            "/apps/x",
            with(json!({"image": "javascript:alert(1)"})),
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "/apps/x",
            with(json!({"icon": "ftp://host/icon.png"})),
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "/apps/x",
            with(json!({"title": "t".repeat(201)})),
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        ("/apps/x", with(json!({"title": "   "})), "application/json", StatusCode::BAD_REQUEST, "invalid_field"),
        ("/apps/x", with(json!({"function_id": "a b"})), "application/json", StatusCode::BAD_REQUEST, "invalid_field"),
        (
            "/apps/x",
            with(json!({"description": "d".repeat(5000)})),
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        ("/apps/x", with(json!({})), "text/plain", StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        (
            "/apps/x",
            with(json!({})),
            "application/x-www-form-urlencoded",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (path, payload, content_type, status, code) in cases {
        let r = api
            .req(Method::PUT, path, Some(&admin))
            .header("content-type", content_type)
            .body(payload.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path} {payload:.80}");
        assert_error(r, status, code).await;
    }
    assert_eq!(api.calls.calls().put, 0, "no refused body was written");
    let list = body(api.req(Method::GET, "/apps", Some(&admin)).send().await.unwrap()).await;
    assert_eq!(list["items"], json!([]));

    // The server-managed fields of a fetched app may be sent back; they are ignored.
    let mut round_trip = app_body("x");
    round_trip["published_at"] = json!("1999-01-01T00:00:00Z");
    let r = api.req(Method::PUT, "/apps/x", Some(&admin)).json(&round_trip).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_ne!(body(r).await["published_at"], "1999-01-01T00:00:00Z");

    // Routes and methods.
    expect_error(api.req(Method::GET, "/nowhere", Some(&admin)), StatusCode::NOT_FOUND, "not_found").await;
    expect_error(api.req(Method::GET, "/apps/x/extra", Some(&admin)), StatusCode::NOT_FOUND, "not_found").await;
    let r = api.req(Method::POST, "/apps", Some(&admin)).send().await.unwrap();
    assert_eq!(r.headers()["allow"], "GET");
    assert_error(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let r = api.req(Method::PATCH, "/apps/x", Some(&admin)).send().await.unwrap();
    assert_eq!(r.headers()["allow"], "GET, PUT, DELETE");
    assert_error(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    // A path slug that cannot exist is simply not found.
    expect_error(api.req(Method::GET, "/apps/NOPE", Some(&admin)), StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn no_client_input_yields_a_server_error() {
    let api = memory_api(test_config()).await;
    let admin = api.admin_token();
    let paths = [
        "/",
        "/apps",
        "/apps/",
        "/apps/%00",
        "/apps/%2e%2e",
        "/apps/a?limit=-1",
        "/apps?next=%ff%fe",
        "/apps?limit=99999999999999999999",
        "/apps?x=1&x=2",
        "/apps/a/b/c/d",
        "//apps//a",
    ];
    let bodies = ["", "null", "{}", "{\"slug\":null}", "\u{0}", "{\"title\":{\"$gt\":\"\"}}", "9e999999"];
    for path in paths {
        for method in [Method::GET, Method::PUT, Method::DELETE, Method::POST, Method::OPTIONS, Method::HEAD] {
            for b in bodies {
                let r = api
                    .req(method.clone(), path, Some(&admin))
                    .header("content-type", "application/json")
                    .body(b)
                    .send()
                    .await
                    .unwrap();
                assert!(
                    r.status().is_client_error() || r.status().is_success(),
                    "{method} {path} {b:?}: {}",
                    r.status()
                );
            }
        }
    }
}

#[tokio::test]
async fn conditional_writes_never_silently_overwrite() {
    let api = memory_api(test_config()).await;
    let admin = api.admin_token();
    let put = |b: Value, headers: Vec<(&'static str, String)>| {
        let mut r = api.req(Method::PUT, "/apps/app", Some(&admin)).json(&b);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        r.send()
    };
    let first = put(app_body("app"), vec![]).await.unwrap();
    let etag1 = first.headers()["etag"].to_str().unwrap().to_owned();
    let published = body(first).await["published_at"].clone();

    // Create-only on an existing app.
    let r = put(app_body("app"), vec![("if-none-match", "*".into())]).await.unwrap();
    assert_error(r, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;

    // Editor A replaces with the current tag; editor B's stale tag is then refused.
    let mut a = app_body("app");
    a["title"] = json!("By A");
    let r = put(a, vec![("if-match", etag1.clone())]).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let etag2 = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(etag1, etag2);
    let replaced = body(r).await;
    assert_eq!(replaced["published_at"], published, "replacing keeps the first publication time");
    let mut b = app_body("app");
    b["title"] = json!("By B");
    assert_error(
        put(b, vec![("if-match", etag1.clone())]).await.unwrap(),
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    )
    .await;
    let now = body(api.req(Method::GET, "/apps/app", Some(&admin)).send().await.unwrap()).await;
    assert_eq!(now["title"], "By A");

    // If-Match on a missing app; a list of tags; a weak tag never matches.
    let r = api
        .req(Method::PUT, "/apps/missing", Some(&admin))
        .header("if-match", "*")
        .json(&app_body("missing"))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let r = put(app_body("app"), vec![("if-match", format!("W/{etag2}"))]).await.unwrap();
    assert_error(r, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let r = put(app_body("app"), vec![("if-match", format!("\"zzz\", {etag2}"))]).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let etag3 = r.headers()["etag"].to_str().unwrap().to_owned();
    let r = put(app_body("app"), vec![("if-match", "no-quotes".into())]).await.unwrap();
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_header").await;

    // Delete honours If-Match too.
    let r = api.req(Method::DELETE, "/apps/app", Some(&admin)).header("if-match", etag2).send().await.unwrap();
    assert_error(r, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let r = api.req(Method::DELETE, "/apps/app", Some(&admin)).header("if-match", etag3).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn listing_pages_clamps_and_filters() {
    let mut config = test_config();
    config.page_size_max = 4;
    config.page_size_default = 2;
    let api = memory_api(config).await;
    let admin = api.admin_token();
    for (i, slug) in ["g", "c", "a", "e", "b", "f", "d"].iter().enumerate() {
        let mut b = app_body(slug);
        b["category"] = json!(if i % 2 == 0 { "Tools" } else { "Viewers" });
        let r = api.req(Method::PUT, &format!("/apps/{slug}"), Some(&admin)).json(&b).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let slugs = |v: &Value| {
        v["items"].as_array().unwrap().iter().map(|a| a["slug"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };

    let first = body(api.req(Method::GET, "/apps", Some(&admin)).send().await.unwrap()).await;
    assert_eq!(slugs(&first), ["a", "b"], "default page size");

    // Follows `next` to the end; every page within the clamped limit.
    let all_of = |query: &'static str| {
        let api = &api;
        let admin = admin.clone();
        async move {
            let mut all = Vec::new();
            let mut next: Option<String> = None;
            loop {
                let path = match &next {
                    Some(c) => format!("/apps?{query}&next={c}"),
                    None => format!("/apps?{query}"),
                };
                let page = body(api.req(Method::GET, &path, Some(&admin)).send().await.unwrap()).await;
                assert!(slugs(&page).len() <= 4, "limit is clamped to page_size_max");
                all.extend(slugs(&page));
                match page["next"].as_str() {
                    Some(c) => next = Some(c.to_owned()),
                    None => return all,
                }
            }
        }
    };
    assert_eq!(all_of("limit=1000").await, ["a", "b", "c", "d", "e", "f", "g"]);
    // Filtered pages may be short (DynamoDB filters after its Limit); following `next`
    // yields every match exactly once.
    assert_eq!(all_of("category=Tools&limit=2").await, ["a", "b", "d", "g"]);
    assert_eq!(all_of("product_area=Omniverse&category=Template+Applications").await, Vec::<String>::new());
    assert_eq!(all_of("category=Viewers&product_area=Omniverse").await, ["c", "e", "f"]);

    for bad in ["/apps?limit=0", "/apps?limit=abc", "/apps?limit=-3", "/apps?colour=red", "/apps?limit=1&limit=2"] {
        expect_error(api.req(Method::GET, bad, Some(&admin)), StatusCode::BAD_REQUEST, "invalid_query").await;
    }
    for bad in ["garbage", "eyJwayI6IkFQUCJ9", "eyJwayI6Ik9USEVSIiwic2siOiJhIn0"] {
        let r = api.req(Method::GET, &format!("/apps?next={bad}"), Some(&admin)).send().await.unwrap();
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_cursor").await;
    }
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let mut config = test_config();
    config.allowed_origins = vec!["https://portal.example".into()];
    let api = memory_api(config).await;
    let preflight = |origin: &'static str| {
        api.http
            .request(Method::OPTIONS, api.url("/apps/x"))
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "authorization, content-type, if-match")
            .send()
    };
    let ok = preflight("https://portal.example").await.unwrap();
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://portal.example");
    assert!(ok.headers()["access-control-allow-methods"].to_str().unwrap().contains("PUT"));
    assert!(ok.headers()["access-control-allow-headers"].to_str().unwrap().contains("if-match"));
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(!refused.headers().contains_key("access-control-allow-origin"));
    assert_error(refused, StatusCode::FORBIDDEN, "forbidden").await;

    let r = api
        .req(Method::GET, "/apps", Some(&api.user_token()))
        .header("origin", "https://portal.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "https://portal.example");
    assert!(r.headers()["access-control-expose-headers"].to_str().unwrap().contains("etag"));
    let r = api
        .req(Method::GET, "/apps", Some(&api.user_token()))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));

    // The production default allows no origin at all.
    let closed = memory_api(test_config()).await;
    let r = closed
        .req(Method::GET, "/apps", Some(&closed.user_token()))
        .header("origin", "https://portal.example")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn each_route_makes_a_known_number_of_storage_calls() {
    let api = memory_api(test_config()).await;
    let admin = api.admin_token();
    let call = |m: Method, p: &'static str, tok: Option<String>, b: Option<Value>| {
        let mut r = api.req(m, p, tok.as_deref());
        if let Some(b) = b {
            r = r.json(&b);
        }
        r.send()
    };
    let expect = |calls: Calls, get, put, delete, query| {
        assert_eq!(calls, Calls { get, put, delete, query, add: 0 });
    };
    // A caller's identity is read on their first request, then cached for authz_cache_ttl.
    call(Method::GET, "/apps", Some(admin.clone()), None).await.unwrap();
    call(Method::GET, "/apps", Some(api.user_token()), None).await.unwrap();
    api.calls.take();
    call(Method::PUT, "/apps/a", Some(admin.clone()), Some(app_body("a"))).await.unwrap();
    expect(api.calls.take(), 1, 1, 0, 0); // read (keeps published_at) + conditional write
    call(Method::PUT, "/apps/a", Some(admin.clone()), Some(app_body("a"))).await.unwrap();
    expect(api.calls.take(), 1, 1, 0, 0);
    let r = api
        .req(Method::PUT, "/apps/b", Some(&admin))
        .header("if-none-match", "*")
        .json(&app_body("b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    expect(api.calls.take(), 0, 1, 0, 0); // create-only: one conditional write
    call(Method::GET, "/apps/a", Some(admin.clone()), None).await.unwrap();
    expect(api.calls.take(), 1, 0, 0, 0); // GET one app: one read
    call(Method::GET, "/apps", Some(admin.clone()), None).await.unwrap();
    expect(api.calls.take(), 0, 0, 0, 1);
    call(Method::DELETE, "/apps/a", Some(admin.clone()), None).await.unwrap();
    expect(api.calls.take(), 1, 0, 1, 0); // read (the app's group decides) + delete conditional on it
    // Refused requests touch no storage.
    call(Method::GET, "/apps/b", None, None).await.unwrap();
    call(Method::DELETE, "/apps/b", Some(api.user_token()), None).await.unwrap();
    call(Method::PUT, "/apps/b", Some(admin.clone()), Some(json!({"title": 1}))).await.unwrap();
    expect(api.calls.take(), 0, 0, 0, 0);
}
