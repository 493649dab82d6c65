//! Identity and access through the emulator: who may call each route, token attacks, OIDC
//! against a fake IdP, the password grant, roles and quotas.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portico_core::Config;
use portico_core::auth::own::KeyFile;
use portico_core::quotas::{Quotas, Resources};
use portico_core::store::counting::Calls;
use portico_core::store::memory::MemoryTable;
use portico_core::store::{Table, now_epoch};
use portico_tests::{
    ADMIN, FakeServer, TestApi, app_body, dynamo_table, mint_hs256, portico_key, sign_es256, test_config, web_token,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn api(config: Config) -> TestApi {
    TestApi::start(Arc::new(MemoryTable::new()), config).await
}

async fn send(
    api: &TestApi,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut r = api.req(method, path, token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

async fn ok(api: &TestApi, method: Method, path: &str, body: Option<Value>) -> Value {
    let r = send(api, method.clone(), path, Some(&api.admin_token()), body).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", v.replace('@', "%40"))).collect::<Vec<_>>().join("&")
}

async fn login(api: &TestApi, username: &str, password: &str) -> reqwest::Response {
    api.http
        .post(api.url("/auth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("grant_type", "password"), ("username", username), ("password", password)]))
        .send()
        .await
        .unwrap()
}

/// A desktop environment of group `desktops`, which no caller but the admin may start.
fn environment() -> Value {
    json!({"title": "Desktop", "kind": "kubernetes", "image": "facility/xfce:1", "protocol": "vnc", "port": 5901,
           "cpu": 1000, "memory": 1024, "max_lifetime": 3600, "group": "desktops"})
}

/// The callers of the matrix, in column order.
const CALLERS: [&str; 4] = ["anonymous", "user", "holder", "admin"];

#[tokio::test]
async fn authorization_matrix_route_by_route_and_role_by_role() {
    let api = api(test_config()).await;
    // carol holds "publisher": app.publish and app.delete on group "" (the apps' default).
    ok(&api, Method::POST, "/admin/roles", Some(json!({"name": "publisher"}))).await;
    ok(&api, Method::POST, "/admin/roles", Some(json!({"name": "viewer"}))).await;
    for action in ["app.publish", "app.delete"] {
        let grant = json!({"group": "", "action": action});
        ok(&api, Method::POST, "/admin/roles/publisher/permissions", Some(grant)).await;
    }
    ok(&api, Method::POST, "/admin/users", Some(json!({"username": "carol"}))).await;
    ok(&api, Method::PUT, "/admin/users/carol/roles/publisher", None).await;
    // Resources the routes act on, one per caller where a call consumes it.
    for who in CALLERS {
        ok(&api, Method::PUT, &format!("/apps/d-{who}"), Some(app_body(&format!("d-{who}")))).await;
        ok(&api, Method::POST, "/admin/users", Some(json!({"username": format!("x-{who}")}))).await;
        ok(&api, Method::POST, "/admin/users", Some(json!({"username": format!("r-{who}")}))).await;
        ok(&api, Method::PUT, &format!("/admin/users/r-{who}/roles/viewer"), None).await;
        ok(&api, Method::POST, "/admin/roles", Some(json!({"name": format!("del-{who}")}))).await;
        let grant = json!({"group": format!("g-{who}"), "action": "job.submit"});
        ok(&api, Method::POST, "/admin/roles/viewer/permissions", Some(grant)).await;
        ok(&api, Method::PUT, &format!("/environments/d-{who}"), Some(environment())).await;
    }
    ok(&api, Method::PUT, "/environments/shared", Some(environment())).await;
    let tokens: [Option<String>; 4] = [None, Some(api.token("bob")), Some(api.token("carol")), Some(api.admin_token())];

    // route, body, expected status for [anonymous, user, holder, admin]; {who} is the caller.
    let matrix: Vec<(Method, &str, Option<Value>, [u16; 4])> = vec![
        (Method::GET, "/apps", None, [401, 200, 200, 200]),
        (Method::GET, "/apps/d-admin", None, [401, 200, 200, 200]),
        (Method::PUT, "/apps/n-{who}", Some(app_body("n-{who}")), [401, 403, 201, 201]),
        (Method::DELETE, "/apps/d-{who}", None, [401, 403, 204, 204]),
        (Method::GET, "/.well-known/jwks.json", None, [200, 200, 200, 200]),
        (Method::GET, "/auth/me", None, [401, 200, 200, 200]),
        (Method::GET, "/user", None, [401, 200, 200, 200]),
        (Method::GET, "/admin/users", None, [401, 403, 403, 200]),
        (Method::POST, "/admin/users", Some(json!({"username": "u-{who}"})), [401, 403, 403, 201]),
        (Method::GET, "/admin/users/bob", None, [401, 403, 403, 200]),
        (Method::DELETE, "/admin/users/x-{who}", None, [401, 403, 403, 204]),
        (Method::PUT, "/admin/users/bob/admin", Some(json!({"admin": false})), [401, 403, 403, 200]),
        (Method::PUT, "/admin/users/bob/password", Some(json!({"password": "long-enough-1"})), [401, 403, 403, 204]),
        (Method::PUT, "/admin/users/bob/roles/viewer", None, [401, 403, 403, 200]),
        (Method::DELETE, "/admin/users/r-{who}/roles/viewer", None, [401, 403, 403, 200]),
        (Method::GET, "/admin/users/bob/quota", None, [401, 403, 403, 200]),
        (Method::PUT, "/admin/users/bob/quota", Some(json!({"sessions": 1})), [401, 403, 403, 200]),
        (Method::DELETE, "/admin/users/bob/quota", None, [401, 403, 403, 204]),
        (Method::GET, "/admin/roles", None, [401, 403, 403, 200]),
        (Method::POST, "/admin/roles", Some(json!({"name": "role-{who}"})), [401, 403, 403, 201]),
        (Method::GET, "/admin/roles/viewer", None, [401, 403, 403, 200]),
        (Method::DELETE, "/admin/roles/del-{who}", None, [401, 403, 403, 204]),
        (Method::GET, "/admin/roles/viewer/permissions", None, [401, 403, 403, 200]),
        (
            Method::POST,
            "/admin/roles/viewer/permissions",
            Some(json!({"group": "g", "action": "rpc.call"})),
            [401, 403, 403, 201],
        ),
        (Method::DELETE, "/admin/roles/viewer/permissions?group=g-{who}&action=job.submit", None, [401, 403, 403, 204]),
        (Method::PUT, "/admin/roles/viewer/quota", Some(json!({"jobs": 2})), [401, 403, 403, 200]),
        (Method::DELETE, "/admin/roles/viewer/quota", None, [401, 403, 403, 204]),
        (Method::GET, "/environments", None, [401, 200, 200, 200]),
        (Method::PUT, "/environments/e-{who}", Some(environment()), [401, 403, 403, 201]),
        (Method::GET, "/environments/shared", None, [401, 404, 404, 200]),
        (Method::DELETE, "/environments/d-{who}", None, [401, 403, 403, 204]),
        // Desktops: no cluster is configured here (503 once the caller may start the
        // environment); another's desktop is never found.
        (Method::POST, "/desktops", Some(json!({"environment": "shared"})), [401, 404, 404, 503]),
        (Method::GET, "/desktops", None, [401, 200, 200, 200]),
        (Method::GET, "/desktops?all=true", None, [401, 403, 403, 200]),
        (Method::DELETE, "/desktops/0123456789abcdef?owner=x-admin", None, [401, 403, 403, 404]),
        (Method::GET, "/desktops/0123456789abcdef", None, [401, 404, 404, 404]),
        (Method::DELETE, "/desktops/0123456789abcdef", None, [401, 404, 404, 404]),
        (Method::POST, "/desktops/0123456789abcdef/connection", None, [401, 503, 503, 503]),
        (Method::POST, "/desktops/0123456789abcdef/extend", Some(json!({"seconds": 60})), [401, 404, 404, 404]),
        (Method::PUT, "/desktops/0123456789abcdef/viewers/bob", None, [401, 404, 404, 404]),
        (Method::DELETE, "/desktops/0123456789abcdef/viewers/bob", None, [401, 404, 404, 404]),
        (Method::POST, "/desktops/0123456789abcdef/connection?owner=x-admin", None, [401, 503, 503, 503]),
        // Experiments: anyone signed in, for their own (no user office is configured here: 503;
        // tests/suite/experiments.rs has one, and another's experiments).
        (Method::GET, "/experiments", None, [401, 503, 503, 503]),
        (Method::PUT, "/experiments/2026-0042/favorite", None, [401, 503, 503, 503]),
        (Method::DELETE, "/experiments/2026-0042/favorite", None, [401, 204, 204, 204]),
    ];
    let mut failures = Vec::new();
    for (method, path, body, expected) in &matrix {
        for ((who, token), want) in CALLERS.iter().zip(&tokens).zip(expected) {
            let path = path.replace("{who}", who);
            let body = body.as_ref().map(|b| serde_json::from_str(&b.to_string().replace("{who}", who)).unwrap());
            let r = send(&api, method.clone(), &path, token.as_deref(), body).await;
            if r.status().as_u16() != *want {
                failures.push(format!("{who}: {method} {path} -> {} (want {want})", r.status()));
            } else if *want == 401 {
                assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"portico\"");
            }
        }
    }
    assert!(failures.is_empty(), "authorization matrix:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn token_attacks_are_refused_with_401() {
    let jku_hits = Arc::new(AtomicUsize::new(0));
    let hits = Arc::clone(&jku_hits);
    let key_server = FakeServer::start(Arc::new(move |_, _, _, _| {
        hits.fetch_add(1, Ordering::SeqCst);
        (200, json!({"keys": []}).to_string())
    }))
    .await;
    let mut config = test_config();
    config.web_token_issuer = Some("web-system".into());
    let api = api(config).await;
    let (kid, pkcs8) = portico_key();
    let now = now_epoch();
    let claims = |patch: Value| {
        let mut c = json!({"iss": "portico", "aud": "portico", "sub": "eve", "exp": now + 600, "iat": now, "nbf": now});
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let own = |patch: Value| sign_es256(&pkcs8, Some(&kid), Some("at+jwt"), &claims(patch));
    let good = own(json!({}));
    let me = send(&api, Method::GET, "/auth/me", Some(&good), None).await;
    assert_eq!(me.status(), StatusCode::OK, "the well-formed token passes");

    // A header carrying key material or a key URL, re-signed with our own key.
    let with_header = |field: &str, value: Value| {
        let (h, p, _) = split(&good);
        let mut header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
        header[field] = value;
        resign(&pkcs8, &header, p)
    };
    let (h, p, s) = split(&good);
    let mut tampered: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
    tampered["sub"] = json!(ADMIN);
    let tampered = format!("{h}.{}.{s}", URL_SAFE_NO_PAD.encode(tampered.to_string()));
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#),
        URL_SAFE_NO_PAD.encode(claims(json!({"sub": ADMIN})).to_string())
    );
    // Key confusion: HS256 "signed" with Portico's public key as the HMAC secret.
    let jwks: Value = send(&api, Method::GET, "/.well-known/jwks.json", None, None).await.json().await.unwrap();
    let public = jwks["keys"][0].to_string();
    let confused = mint_hs256(public.as_bytes(), &claims(json!({"sub": ADMIN})));
    let confused_x = mint_hs256(jwks["keys"][0]["x"].as_str().unwrap().as_bytes(), &claims(json!({"sub": ADMIN})));
    let other_key = KeyFile::generate();
    let foreign = sign_es256(&other_key.keys[0].pkcs8, Some(&kid), Some("at+jwt"), &claims(json!({})));

    let attacks: Vec<(&str, String)> = vec![
        ("expired", own(json!({"exp": now - 120}))),
        ("no exp", own(json!({"exp": null}))),
        ("not yet valid", own(json!({"nbf": now + 600}))),
        ("wrong issuer", own(json!({"iss": "someone-else"}))),
        ("no issuer", own(json!({"iss": null}))),
        ("wrong audience", own(json!({"aud": "another-api"}))),
        ("no audience", own(json!({"aud": null}))),
        ("not an access token (typ)", sign_es256(&pkcs8, Some(&kid), None, &claims(json!({})))),
        ("unknown kid", sign_es256(&pkcs8, Some("nope"), Some("at+jwt"), &claims(json!({})))),
        ("signed by another key", foreign),
        ("tampered payload", tampered),
        ("alg none", none),
        ("HS256 with the public JWK", confused),
        ("HS256 with a public coordinate", confused_x),
        ("jku header", with_header("jku", json!(format!("{}/jwks", key_server.url)))),
        ("x5u header", with_header("x5u", json!(format!("{}/cert", key_server.url)))),
        ("embedded jwk", with_header("jwk", jwks["keys"][0].clone())),
        ("oversized", format!("{good}{}", "A".repeat(9000))),
        ("garbage", "not.a.jwt".into()),
        ("web token without the configured issuer", web_token("wes", &[])),
        (
            "web token with another issuer",
            mint_hs256(portico_tests::SECRET.as_bytes(), &json!({"sub": "wes", "iss": "x", "exp": now + 60})),
        ),
    ];
    for (name, token) in attacks {
        let r = send(&api, Method::GET, "/auth/me", Some(&token), None).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"portico\"", "{name}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized", "{name}");
    }
    let web_ok =
        mint_hs256(portico_tests::SECRET.as_bytes(), &json!({"sub": "wes", "iss": "web-system", "exp": now + 60}));
    assert_eq!(send(&api, Method::GET, "/auth/me", Some(&web_ok), None).await.status(), StatusCode::OK);
    assert_eq!(jku_hits.load(Ordering::SeqCst), 0, "key URLs in headers are never fetched");
}

fn split(token: &str) -> (&str, &str, &str) {
    let mut parts = token.split('.');
    (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap())
}

fn resign(pkcs8_b64: &str, header: &Value, payload_b64: &str) -> String {
    let der = base64::engine::general_purpose::STANDARD.decode(pkcs8_b64).unwrap();
    let signing_input = format!("{}.{payload_b64}", URL_SAFE_NO_PAD.encode(header.to_string()));
    let key = jsonwebtoken::EncodingKey::from_ec_der(&der);
    let signature = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, jsonwebtoken::Algorithm::ES256).unwrap();
    format!("{signing_input}.{signature}")
}

/// A fake OpenID provider: JWKS (fetches counted; can be taken down) and userinfo.
struct FakeIdp {
    server: FakeServer,
    jwks_fetches: Arc<AtomicUsize>,
    userinfo_fetches: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    key: KeyFile,
}

impl FakeIdp {
    async fn start() -> FakeIdp {
        let key = KeyFile::generate();
        let jwk = {
            // The public JWK of the IdP's key, as Portico publishes its own.
            let mut config = test_config();
            config.token_issuer = "idp".into();
            let ring = portico_core::auth::own::Keyring::new(&key, &config).unwrap();
            serde_json::to_value(&ring.jwks().keys[0]).unwrap()
        };
        let (jwks_fetches, userinfo_fetches, down) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (j, u, d) = (Arc::clone(&jwks_fetches), Arc::clone(&userinfo_fetches), Arc::clone(&down));
        let server = FakeServer::start(Arc::new(move |_, path, auth, _| match path {
            "/jwks" => {
                j.fetch_add(1, Ordering::SeqCst);
                if d.load(Ordering::SeqCst) {
                    (503, "{}".into())
                } else {
                    (200, json!({"keys": [jwk.clone()]}).to_string())
                }
            }
            "/userinfo" => {
                u.fetch_add(1, Ordering::SeqCst);
                match auth {
                    Some(a) if a.starts_with("Bearer ") => (200, json!({"groups": ["portal-admins"]}).to_string()),
                    _ => (401, "{}".into()),
                }
            }
            _ => (404, "{}".into()),
        }))
        .await;
        FakeIdp { server, jwks_fetches, userinfo_fetches, down, key }
    }

    fn config(&self) -> Config {
        let mut config = test_config();
        config.oidc_jwks_uri = Some(format!("{}/jwks", self.server.url));
        config.oidc_issuer = Some("https://idp.example".into());
        config.oidc_audience = Some("portal".into());
        config.oidc_algorithms = vec!["ES256".into()];
        config
    }

    fn token(&self, kid: Option<&str>, patch: Value) -> String {
        let now = now_epoch();
        let mut claims = json!({
            "iss": "https://idp.example", "aud": "portal", "sub": "f81d4fae", "preferred_username": "olivia",
            "groups": ["staff"], "exp": now + 600, "iat": now,
        });
        for (k, v) in patch.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let kid = kid.unwrap_or(&self.key.keys[0].kid).to_owned();
        sign_es256(&self.key.keys[0].pkcs8, Some(&kid), None, &claims)
    }
}

#[tokio::test]
async fn oidc_tokens_use_a_cached_jwks_with_one_rate_limited_refresh() {
    let idp = FakeIdp::start().await;
    let mut config = idp.config();
    config.oidc_jwks_min_refresh = 1;
    let api = api(config).await;
    let token = idp.token(None, json!({}));
    for _ in 0..20 {
        let r = send(&api, Method::GET, "/auth/me", Some(&token), None).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let me: Value = send(&api, Method::GET, "/auth/me", Some(&token), None).await.json().await.unwrap();
    assert_eq!(
        (me["username"].as_str(), me["source"].as_str(), me["admin"].as_bool()),
        (Some("olivia"), Some("oidc"), Some(false))
    );
    assert_eq!(idp.jwks_fetches.load(Ordering::SeqCst), 1, "one fetch per TTL");
    for i in 0..10 {
        let other = idp.token(None, json!({"jti": format!("other-{i}")}));
        assert_eq!(send(&api, Method::GET, "/auth/me", Some(&other), None).await.status(), StatusCode::OK);
    }
    assert_eq!(idp.jwks_fetches.load(Ordering::SeqCst), 1, "new tokens, same cached keys");

    // A burst of unknown key ids causes one refresh, not one per token (the last fetch must
    // be min_refresh old for any refresh at all).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for i in 0..20 {
        let forged = idp.token(Some(&format!("unknown-{i}")), json!({}));
        assert_eq!(send(&api, Method::GET, "/auth/me", Some(&forged), None).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(idp.jwks_fetches.load(Ordering::SeqCst), 2, "one rate-limited refresh for unknown kids");

    // Issuer, audience, admin group.
    for bad in [json!({"iss": "https://evil.example"}), json!({"aud": "other"}), json!({"exp": now_epoch() - 300})] {
        let r = send(&api, Method::GET, "/auth/me", Some(&idp.token(None, bad.clone())), None).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad}");
    }
    let admin = idp.token(None, json!({"preferred_username": "oscar", "groups": ["admin"]}));
    let me: Value = send(&api, Method::GET, "/auth/me", Some(&admin), None).await.json().await.unwrap();
    assert_eq!(me["admin"], true, "admin_group membership makes an administrator");
}

#[tokio::test]
async fn cached_oidc_keys_keep_serving_while_the_idp_is_down() {
    let idp = FakeIdp::start().await;
    let mut config = idp.config();
    config.oidc_jwks_ttl = 1;
    config.oidc_jwks_min_refresh = 60;
    let api = api(config).await;
    let token = idp.token(None, json!({}));
    assert_eq!(send(&api, Method::GET, "/auth/me", Some(&token), None).await.status(), StatusCode::OK);
    idp.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // past the JWKS TTL
    for i in 0..5 {
        // Fresh tokens, so each needs the (stale) key rather than the memory of a verified token.
        let fresh = idp.token(None, json!({"jti": format!("t{i}")}));
        assert_eq!(send(&api, Method::GET, "/auth/me", Some(&fresh), None).await.status(), StatusCode::OK);
    }
    assert_eq!(idp.jwks_fetches.load(Ordering::SeqCst), 2, "one failed refresh, then rate-limited");
}

#[tokio::test]
async fn userinfo_groups_are_learned_once_per_ttl() {
    let idp = FakeIdp::start().await;
    let mut config = idp.config();
    config.oidc_userinfo_endpoint = Some(format!("{}/userinfo", idp.server.url));
    config.admin_group = "portal-admins".into();
    let api = api(config).await;
    let token = idp.token(None, json!({"groups": []}));
    for _ in 0..5 {
        let me: Value = send(&api, Method::GET, "/auth/me", Some(&token), None).await.json().await.unwrap();
        assert_eq!(me["admin"], true, "the userinfo groups make an administrator");
    }
    assert_eq!(idp.userinfo_fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn password_grant_follows_rfc_6749() {
    let mut config = test_config();
    config.login_max_failures = 3;
    let api = api(config).await;
    ok(&api, Method::POST, "/admin/users", Some(json!({"username": "pat", "password": "correct horse"}))).await;

    let r = login(&api, "pat", "correct horse").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!((body["token_type"].as_str(), body["expires_in"].as_i64()), (Some("bearer"), Some(3600)));
    let token = body["access_token"].as_str().unwrap();
    let me: Value = send(&api, Method::GET, "/user", Some(token), None).await.json().await.unwrap();
    assert_eq!(me["username"], "pat");

    // Wrong password and unknown user answer alike.
    let wrong: Value = login(&api, "pat", "wrong horse").await.json().await.unwrap();
    let nobody: Value = login(&api, "nobody", "wrong horse").await.json().await.unwrap();
    assert_eq!(wrong, nobody);
    assert_eq!(wrong["error"], "invalid_grant");

    for (body, error) in [
        ("grant_type=client_credentials", "unsupported_grant_type"),
        ("username=pat&password=x", "invalid_request"),
        ("grant_type=password&username=pat", "invalid_request"),
        ("grant_type=password&grant_type=password&username=pat&password=x", "invalid_request"),
    ] {
        let r = api
            .http
            .post(api.url("/auth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], error, "{body}");
    }
    let json_body =
        api.http.post(api.url("/auth/token")).json(&json!({"grant_type": "password"})).send().await.unwrap();
    assert_eq!(json_body.json::<Value>().await.unwrap()["error"], "invalid_request");

    // Three failures (one above, two here) lock the user for the window, even with the right password.
    login(&api, "pat", "wrong again").await;
    login(&api, "pat", "and again").await;
    let locked: Value = login(&api, "pat", "correct horse").await.json().await.unwrap();
    assert_eq!(locked["error"], "invalid_grant");
    assert!(locked["error_description"].as_str().unwrap().contains("too many"), "{locked}");
}

#[tokio::test]
async fn delegated_login_creates_the_user_on_first_success() {
    let facility = FakeServer::start(Arc::new(|method, path, _, body| {
        let creds: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        match (method, path, creds["username"].as_str(), creds["password"].as_str()) {
            ("POST", "/login", Some("fiona"), Some("facility-pass")) => (200, "{}".into()),
            _ => (401, "{}".into()),
        }
    }))
    .await;
    let mut config = test_config();
    config.login_provider_url = Some(format!("{}/login", facility.url));
    let api = api(config).await;
    assert_eq!(login(&api, "fiona", "wrong").await.status(), StatusCode::BAD_REQUEST);
    let r = login(&api, "fiona", "facility-pass").await;
    assert_eq!(r.status(), StatusCode::OK);
    let user = ok(&api, Method::GET, "/admin/users/fiona", None).await;
    assert_eq!((user["source"].as_str(), user["roles"].clone()), (Some("login-provider"), json!([])));
}

#[tokio::test]
async fn roles_grant_per_group_and_changes_apply_at_once() {
    let api = api(test_config()).await;
    let carol = api.token("carol");
    let mut in_team = app_body("team-app");
    in_team["group"] = json!("team-a");
    let put = |body: Value| send(&api, Method::PUT, "/apps/team-app", Some(&carol), Some(body));

    // First access: carol exists, with no roles.
    let me: Value = send(&api, Method::GET, "/auth/me", Some(&carol), None).await.json().await.unwrap();
    assert_eq!((me["roles"].clone(), me["admin"].clone()), (json!([]), json!(false)));
    assert_eq!(ok(&api, Method::GET, "/admin/users/carol", None).await["source"], "portico");
    assert_eq!(put(in_team.clone()).await.status(), StatusCode::FORBIDDEN);

    ok(&api, Method::POST, "/admin/roles", Some(json!({"name": "team-a-publisher"}))).await;
    let grant = json!({"group": "team-a", "action": "app.publish"});
    ok(&api, Method::POST, "/admin/roles/team-a-publisher/permissions", Some(grant)).await;
    ok(&api, Method::PUT, "/admin/users/carol/roles/team-a-publisher", None).await;
    assert_eq!(put(in_team.clone()).await.status(), StatusCode::CREATED);
    let mut elsewhere = in_team.clone();
    elsewhere["group"] = json!("team-b");
    assert_eq!(put(elsewhere).await.status(), StatusCode::FORBIDDEN, "moving an app needs both groups");
    let me: Value = send(&api, Method::GET, "/auth/me", Some(&carol), None).await.json().await.unwrap();
    assert_eq!(me["permissions"], json!([{"group": "team-a", "action": "app.publish"}]));

    // Revoked: refused at once. Deleted and recreated: not regained.
    let grant_team_a = || {
        let grant = json!({"group": "team-a", "action": "app.publish"});
        ok(&api, Method::POST, "/admin/roles/team-a-publisher/permissions", Some(grant))
    };
    ok(&api, Method::DELETE, "/admin/roles/team-a-publisher/permissions?group=team-a&action=app.publish", None).await;
    assert_eq!(put(in_team.clone()).await.status(), StatusCode::FORBIDDEN);
    grant_team_a().await;
    assert_eq!(put(in_team.clone()).await.status(), StatusCode::OK);
    ok(&api, Method::DELETE, "/admin/roles/team-a-publisher", None).await;
    ok(&api, Method::POST, "/admin/roles", Some(json!({"name": "team-a-publisher"}))).await;
    grant_team_a().await;
    assert_eq!(put(in_team).await.status(), StatusCode::FORBIDDEN, "a recreated role is a new role");
}

#[tokio::test]
async fn nothing_is_granted_through_a_body_field() {
    let api = api(test_config()).await;
    let bob = api.token("bob");
    let mut sneaky = app_body("sneaky");
    sneaky["admin"] = json!(true);
    let admin = api.admin_token();
    assert_eq!(
        send(&api, Method::PUT, "/apps/sneaky", Some(&admin), Some(sneaky)).await.status(),
        StatusCode::BAD_REQUEST
    );
    for body in [
        json!({"username": "mal", "roles": ["publisher"]}),
        json!({"username": "mal", "permissions": [{"group": "*", "action": "app.publish"}]}),
        json!({"username": "mal", "has_password": true, "source": "oidc"}),
    ] {
        let r = send(&api, Method::POST, "/admin/users", Some(&admin), Some(body.clone())).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let r = send(&api, Method::PUT, "/admin/users/bob/admin", Some(&bob), Some(json!({"admin": true}))).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no one grants themselves anything");
    let r = send(&api, Method::PUT, "/admin/users/bob/admin", Some(&admin), Some(json!({"admin": true, "roles": []})))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let me: Value = send(&api, Method::GET, "/auth/me", Some(&bob), None).await.json().await.unwrap();
    assert_eq!(me["admin"], false);
}

#[tokio::test]
async fn identity_costs_a_known_number_of_storage_calls() {
    let api = api(test_config()).await;
    ok(&api, Method::POST, "/admin/roles", Some(json!({"name": "one"}))).await;
    ok(&api, Method::POST, "/admin/users", Some(json!({"username": "dora"}))).await;
    ok(&api, Method::PUT, "/admin/users/dora/roles/one", None).await;
    let (dora, newbie) = (api.token("dora"), api.token("newbie"));
    api.calls.take();
    send(&api, Method::GET, "/apps", Some(&newbie), None).await;
    let c = api.calls.take();
    assert_eq!((c.query, c.put), (2, 1), "first access: user query + create, then the route's query");
    send(&api, Method::GET, "/apps", Some(&dora), None).await;
    assert_eq!(api.calls.take().query, 3, "user query + 1 per role + the route's query");
    send(&api, Method::GET, "/apps", Some(&dora), None).await;
    assert_eq!(api.calls.take(), Calls { query: 1, ..Calls::default() }, "cached: only the route's query");
}

/// The calls of one request, the caller's identity read before (any change through the admin
/// API clears the process's identity cache).
async fn counted(api: &TestApi, method: Method, path: &str, token: &str, body: Option<Value>) -> Calls {
    send(api, Method::GET, "/auth/me", Some(token), None).await;
    api.calls.take();
    let r = send(api, method.clone(), path, Some(token), body).await;
    assert!(r.status().is_success(), "{method} {path}: {}", r.status());
    api.calls.take()
}

#[tokio::test]
async fn auth_and_admin_routes_make_a_known_number_of_storage_calls() {
    let api = api(test_config()).await;
    let admin = api.admin_token();
    ok(&api, Method::POST, "/admin/roles", Some(json!({"name": "one"}))).await;
    ok(&api, Method::POST, "/admin/users", Some(json!({"username": "dora", "password": "dora-password"}))).await;
    let dora = api.token("dora");
    let c = counted(&api, Method::GET, "/auth/me", &dora, None).await;
    assert_eq!((c.get, c.total()), (1, 1), "the caller's usage: {c:?}");
    let c = counted(&api, Method::GET, "/.well-known/jwks.json", &dora, None).await;
    assert_eq!(c.total(), 0, "the keys are in memory");
    api.calls.take();
    assert_eq!(login(&api, "dora", "dora-password").await.status(), StatusCode::OK);
    let c = api.calls.take();
    assert_eq!((c.get, c.query, c.total()), (1, 1, 2), "the password grant: {c:?}");
    let c = counted(&api, Method::POST, "/admin/users", &admin, Some(json!({"username": "erin"}))).await;
    assert_eq!((c.put, c.total()), (1, 1), "create: one conditional write: {c:?}");
    let c = counted(&api, Method::GET, "/admin/users", &admin, None).await;
    assert_eq!((c.query, c.total()), (1, 1), "a page of users: one index query");
    let c = counted(&api, Method::GET, "/admin/users/dora", &admin, None).await;
    assert_eq!((c.get, c.query, c.total()), (1, 1, 2), "the user and their usage: {c:?}");
    let c = counted(&api, Method::PUT, "/admin/users/dora/roles/one", &admin, None).await;
    assert_eq!((c.put, c.query, c.total()), (1, 2, 3), "the user and the role read, the user written: {c:?}");
    let c = counted(&api, Method::GET, "/admin/roles/one", &admin, None).await;
    assert_eq!((c.query, c.total()), (1, 1), "the role with its permissions: one query");
}

#[tokio::test]
async fn quotas_follow_overrides_and_role_defaults() {
    let mut config = test_config();
    config.quota_sessions = 1;
    let api = api(config).await;
    let bob = api.token("bob");
    let me: Value = send(&api, Method::GET, "/auth/me", Some(&bob), None).await.json().await.unwrap();
    assert_eq!(me["quota"]["sessions"], 1);
    assert_eq!(me["usage"], json!({"sessions": 0, "jobs": 0, "desktops": 0, "cpu": 0, "memory": 0, "storage": 0}));
    ok(&api, Method::POST, "/admin/roles", Some(json!({"name": "power"}))).await;
    ok(&api, Method::PUT, "/admin/roles/power/quota", Some(json!({"sessions": 4, "jobs": 9}))).await;
    ok(&api, Method::PUT, "/admin/users/bob/roles/power", None).await;
    let me: Value = send(&api, Method::GET, "/auth/me", Some(&bob), None).await.json().await.unwrap();
    assert_eq!((me["quota"]["sessions"].as_i64(), me["quota"]["jobs"].as_i64()), (Some(4), Some(9)));
    ok(&api, Method::PUT, "/admin/users/bob/quota", Some(json!({"sessions": 2}))).await;
    let me: Value = send(&api, Method::GET, "/auth/me", Some(&bob), None).await.json().await.unwrap();
    assert_eq!(me["quota"]["sessions"], 2, "a user override beats role defaults");
    let r = send(&api, Method::PUT, "/admin/users/bob/quota", Some(&api.admin_token()), Some(json!({"sessions": -1})))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

async fn fifty_concurrent_session_reservations_against_three(table: Arc<dyn Table>) {
    let limits = Resources { sessions: 3, ..Resources::default() };
    let one = Resources { sessions: 1, ..Resources::default() };
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let table = Arc::clone(&table);
            tokio::spawn(async move { Quotas::new(table.as_ref()).reserve("racer", &one, &limits).await })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => granted += 1,
            Err(e) => assert_eq!(e.code(), "quota_exceeded"),
        }
    }
    assert_eq!(granted, 3);
    let quotas = Quotas::new(table.as_ref());
    assert_eq!(quotas.usage("racer").await.unwrap().sessions, 3);
    quotas.release("racer", &one).await.unwrap();
    assert!(quotas.reserve("racer", &one, &limits).await.is_ok(), "a release makes room");
    let too_much = Resources { sessions: 4, ..Resources::default() };
    assert!(quotas.release("racer", &too_much).await.is_err(), "never below zero");
}

#[tokio::test]
async fn quota_race_on_the_embedded_store() {
    fifty_concurrent_session_reservations_against_three(Arc::new(MemoryTable::new())).await;
}

#[tokio::test]
async fn quota_race_on_dynamodb_local() {
    fifty_concurrent_session_reservations_against_three(Arc::new(dynamo_table().await)).await;
}
