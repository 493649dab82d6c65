//! Signing in at an OpenID provider: the authorization code flow with PKCE against a fake
//! provider on 127.0.0.1 that checks what a real one checks (client, redirect URI, the S256
//! challenge against the verifier) and signs ID tokens with its own key.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fantoccini::Locator;
use portico_core::auth::own::KeyFile;
use portico_core::store::now_epoch;
use portico_tests::browser::Browser;
use portico_tests::{sign_es256, test_config};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use super::ConsoleEnv;

const CLIENT_ID: &str = "portico-console";
const CODE: &str = "one-time-code-42";

/// What the provider was asked, and how it should misbehave.
#[derive(Default)]
struct Seen {
    authorize: HashMap<String, String>,
    token_requests: usize,
    wrong_nonce: bool,
}

struct FakeProvider {
    url: String,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeProvider {
    async fn start() -> FakeProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let key = KeyFile::generate();
        let jwk = {
            let ring = portico_core::auth::own::Keyring::new(&key, &test_config()).unwrap();
            serde_json::to_value(&ring.jwks().keys[0]).unwrap()
        };
        let seen = Arc::new(Mutex::new(Seen::default()));
        let state = Arc::new((url.clone(), key, jwk, Arc::clone(&seen)));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(answer(&state, req).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        FakeProvider { url, seen, task }
    }
}

type Provider = (String, KeyFile, Value, Arc<Mutex<Seen>>);

async fn answer(
    (url, key, jwk, seen): &Provider,
    req: http::Request<hyper::body::Incoming>,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let params = |text: &[u8]| -> HashMap<String, String> { form_urlencoded::parse(text).into_owned().collect() };
    let json_answer = |status: u16, value: Value| {
        let mut r = http::Response::new(http_body_util::Full::new(bytes::Bytes::from(value.to_string())));
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        r.headers_mut().insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        r
    };
    match (parts.method.as_str(), parts.uri.path()) {
        ("GET", "/.well-known/openid-configuration") => json_answer(
            200,
            json!({"issuer": url, "authorization_endpoint": format!("{url}/authorize"),
                   "token_endpoint": format!("{url}/token"), "jwks_uri": format!("{url}/jwks")}),
        ),
        ("GET", "/jwks") => json_answer(200, json!({"keys": [jwk]})),
        ("GET", "/authorize") => {
            // The user is signed in at the provider already: straight back with a code.
            let p = params(parts.uri.query().unwrap_or("").as_bytes());
            // RFC 7636 §4.2-4.4: an S256 challenge is 43 base64url characters; a public
            // client must send one. Refused as oidc-provider refuses it: back to the client's
            // redirect URI with the error (RFC 6749 §4.1.2.1), not a page of the provider's.
            let challenge = p.get("code_challenge").map_or("", |c| c.as_str());
            let base64url = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_');
            let pkce_ok = p.get("code_challenge_method").map(String::as_str) == Some("S256")
                && challenge.len() == 43
                && challenge.bytes().all(base64url);
            let state = form_urlencoded::byte_serialize(p["state"].as_bytes()).collect::<String>();
            let back = if pkce_ok {
                format!("{}?code={CODE}&state={state}", p["redirect_uri"])
            } else {
                let said = "Authorization Server policy requires PKCE to be used for this request";
                let said = form_urlencoded::byte_serialize(said.as_bytes()).collect::<String>();
                format!("{}?error=invalid_request&error_description={said}&state={state}", p["redirect_uri"])
            };
            seen.lock().unwrap().authorize = p;
            let mut r = http::Response::new(http_body_util::Full::new(bytes::Bytes::new()));
            *r.status_mut() = StatusCode::FOUND;
            r.headers_mut().insert(header::LOCATION, back.parse().unwrap());
            r
        }
        ("POST", "/token") => {
            let p = params(&body);
            let mut seen = seen.lock().unwrap();
            seen.token_requests += 1;
            let asked = &seen.authorize;
            // RFC 7636 §4.1: a verifier is 43 to 128 unreserved characters (the words are
            // oidc-provider's, an OpenID-certified provider).
            let verifier = p.get("code_verifier").map_or("", |v| v);
            let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
            if !(43..=128).contains(&verifier.len()) || !verifier.bytes().all(unreserved) {
                let said = "code_verifier must be a string with a minimum length of 43 characters";
                return json_answer(400, json!({"error": "invalid_request", "error_description": said}));
            }
            let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
            let valid = p.get("grant_type").map(String::as_str) == Some("authorization_code")
                && p.get("code").map(String::as_str) == Some(CODE)
                && p.get("client_id") == asked.get("client_id")
                && p.get("redirect_uri") == asked.get("redirect_uri")
                && asked.get("code_challenge_method").map(String::as_str) == Some("S256")
                && asked.get("code_challenge") == Some(&challenge);
            if !valid {
                return json_answer(400, json!({"error": "invalid_grant"}));
            }
            let nonce = if seen.wrong_nonce { "another-sign-in".to_owned() } else { asked["nonce"].clone() };
            let now = now_epoch();
            let claims = json!({"iss": url, "aud": CLIENT_ID, "sub": "f81d4fae", "preferred_username": "olivia",
                                "groups": ["staff"], "exp": now + 600, "iat": now, "nonce": nonce});
            let id_token = sign_es256(&key.keys[0].pkcs8, Some(&key.keys[0].kid), None, &claims);
            json_answer(200, json!({"id_token": id_token, "access_token": "opaque", "token_type": "Bearer"}))
        }
        _ => json_answer(404, json!({})),
    }
}

async fn env_with(provider: &FakeProvider) -> ConsoleEnv {
    let url = provider.url.clone();
    ConsoleEnv::start_tuned(move |config| {
        config.oidc_jwks_uri = Some(format!("{url}/jwks"));
        config.oidc_issuer = Some(url);
        config.oidc_audience = Some(CLIENT_ID.into());
        config.oidc_algorithms = vec!["ES256".into()];
        config.console_oidc_client_id = Some(CLIENT_ID.into());
    })
    .await
}

#[tokio::test]
async fn a_user_signs_in_at_the_oidc_provider_with_pkce() {
    let provider = FakeProvider::start().await;
    let env = env_with(&provider).await;
    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&env.url("/console/apps?status=ACTIVE")).await.unwrap();
    c.wait().for_element(Locator::LinkText("Sign in with your organization")).await.unwrap().click().await.unwrap();
    let who = c.wait().for_element(Locator::Css("form.signout .who")).await.expect("signed in via OIDC");
    assert_eq!(who.text().await.unwrap(), "olivia");
    let back = c.current_url().await.unwrap();
    assert_eq!((back.path(), back.query()), ("/console/apps", Some("status=ACTIVE")), "back where the user was going");
    let asked = provider.seen.lock().unwrap().authorize.clone();
    assert_eq!(asked["client_id"], CLIENT_ID);
    assert_eq!(asked["response_type"], "code");
    assert_eq!(asked["redirect_uri"], env.url("/console/oidc/callback"));
    assert!(asked["scope"].split(' ').any(|s| s == "openid"));
    assert!(asked["state"].len() >= 32 && asked["nonce"].len() >= 32, "unguessable state and nonce");
    browser.screenshot("console-oidc-signed-in").await;
    c.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_forged_or_replayed_callback_signs_nobody_in() {
    let provider = FakeProvider::start().await;
    let env = env_with(&provider).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let start = http.get(env.url("/console/oidc/start")).send().await.unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let flow = start.headers()[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();
    let location = start.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{}/authorize?", provider.url)));
    http.get(&location).send().await.unwrap(); // the provider notes the request
    let state = provider.seen.lock().unwrap().authorize["state"].clone();
    let callback = |query: String, cookie: Option<&str>| {
        let mut r = http.get(env.url(&format!("/console/oidc/callback?{query}")));
        if let Some(c) = cookie {
            r = r.header(header::COOKIE, c);
        }
        r.send()
    };
    let signed_in = |r: &reqwest::Response| {
        r.headers().get_all(header::SET_COOKIE).iter().any(|c| c.to_str().unwrap().starts_with("portico_console=e"))
    };
    // Another browser (no flow cookie), and a state that is not this sign-in's.
    for (query, cookie) in
        [(format!("code={CODE}&state={state}"), None), (format!("code={CODE}&state=forged"), Some(flow.as_str()))]
    {
        let r = callback(query.clone(), cookie).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query} {cookie:?}");
        assert!(!signed_in(&r));
    }
    assert_eq!(provider.seen.lock().unwrap().token_requests, 0, "no code was spent on a forged callback");
    // An ID token minted for another sign-in (its nonce) is refused.
    provider.seen.lock().unwrap().wrong_nonce = true;
    let r = callback(format!("code={CODE}&state={state}"), Some(&flow)).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(!signed_in(&r));
    assert!(r.text().await.unwrap().contains("not issued for this sign-in"));
    // The right one signs in.
    provider.seen.lock().unwrap().wrong_nonce = false;
    let r = callback(format!("code={CODE}&state={state}"), Some(&flow)).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(signed_in(&r), "an ID token (a JWT) in the session cookie");
}

#[tokio::test]
async fn without_a_console_client_id_there_is_no_oidc_sign_in() {
    let env = ConsoleEnv::start().await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    assert_eq!(http.get(env.url("/console/oidc/start")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let page = http.get(env.url("/console/signin")).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("Sign in with your organization"));
}
