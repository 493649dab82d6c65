//! What a browser hides: the session cookie's flags, the security headers of every page, and
//! cross-site or token-less form posts refused (also from a real cross-origin page).

use std::time::Duration;

use fantoccini::Locator;
use portico_tests::browser::Browser;
use reqwest::{Method, StatusCode, header};
use serde_json::Value;

use super::{
    ADMIN_PASSWORD, ConsoleEnv, USER_PASSWORD, encode, get, hidden, http, http_sign_in, post, set_cookies, signin_form,
};

#[tokio::test]
async fn the_session_cookie_is_http_only_secure_lax_and_scoped_and_sign_out_clears_it() {
    let env = ConsoleEnv::start().await;
    let (line, cookie) = http_sign_in(&env, "lena", USER_PASSWORD).await;
    for flag in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/console", "Max-Age="] {
        assert!(line.contains(flag), "{flag} missing from {line}");
    }
    // The cookie is a Portico token the API accepts as lena's.
    let token = cookie.trim_start_matches("portico_console=");
    let me: Value = env.api.req(Method::GET, "/auth/me", Some(token)).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["username"], "lena");

    let csrf = hidden(&get(&env, &cookie, "/console/apps").await.text().await.unwrap(), "_csrf");
    let out = post(&env, &cookie, "/console/signout", &[("_csrf", csrf.as_str())]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let cleared = set_cookies(&out);
    assert!(cleared.iter().any(|c| c.starts_with("portico_console=;") && c.contains("Max-Age=0")), "{cleared:?}");

    // A wrong password: the form again, the API's words, no cookie.
    let (pre, pre_field) = signin_form(&env).await;
    let r = http()
        .post(env.url("/console/signin"))
        .header(header::COOKIE, &pre)
        .body(encode(&[("_pre", pre_field.as_str()), ("username", "lena"), ("password", "not-her-password")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!set_cookies(&r).iter().any(|c| c.starts_with("portico_console=")));
    assert!(r.text().await.unwrap().contains("role=\"alert\""));
}

#[tokio::test]
async fn every_page_carries_a_strict_csp_and_the_other_security_headers() {
    let env = ConsoleEnv::start().await;
    env.admin(Method::PUT, "/apps/usd-validate", portico_tests::app_body("usd-validate")).await;
    let (_, cookie) = http_sign_in(&env, "root", ADMIN_PASSWORD).await;
    let pages = [
        "/console/signin",
        "/console/apps",
        "/console/apps/usd-validate",
        "/console/apps/no-such-app",
        "/console/sessions",
        "/console/jobs",
        "/console/profile",
        "/console/admin",
        "/console/nowhere",
    ];
    for path in pages {
        let r = get(&env, &cookie, path).await;
        let h = r.headers();
        let csp = h.get(header::CONTENT_SECURITY_POLICY).unwrap_or_else(|| panic!("{path}: no CSP")).to_str().unwrap();
        for directive in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"] {
            assert!(csp.contains(directive), "{path}: {directive} missing from {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(h[header::REFERRER_POLICY], "same-origin", "{path}");
        let html = r.text().await.unwrap();
        assert!(!html.contains("<script>") && !html.contains(" onclick="), "{path}: inline script");
    }
    // The assets: long-lived under their digest names, and the same headers.
    let html = http().get(env.url("/console/signin")).send().await.unwrap().text().await.unwrap();
    let css = html.split("href=\"").find_map(|s| s.split('"').next().filter(|p| p.ends_with(".css"))).unwrap();
    let r = http().get(env.url(css)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert!(r.headers().contains_key(header::CONTENT_SECURITY_POLICY));
}

#[tokio::test]
async fn posts_without_the_pages_token_or_from_another_origin_are_refused() {
    let env = ConsoleEnv::start().await;
    env.admin(Method::PUT, "/apps/usd-validate", portico_tests::app_body("usd-validate")).await;
    let (_, cookie) = http_sign_in(&env, "root", ADMIN_PASSWORD).await;
    let page = get(&env, &cookie, "/console/apps/usd-validate").await;
    let csrf = hidden(&page.text().await.unwrap(), "_csrf");
    let launch = |origin: Option<String>, token: Option<&str>| {
        let mut r = http().post(env.url("/console/apps/usd-validate/launch")).header(header::COOKIE, &cookie);
        if let Some(o) = origin {
            r = r.header(header::ORIGIN, o);
        }
        r.body(encode(&[("_csrf", token.unwrap_or(""))])).send()
    };
    let refusals = [
        (Some(env.url("")), None),
        (Some(env.url("")), Some("forged-token")),
        (Some("http://127.0.0.1:1".into()), Some(csrf.as_str())),
        (Some("null".into()), Some(csrf.as_str())),
    ];
    for (origin, token) in refusals {
        let r = launch(origin.clone(), token).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{origin:?} {token:?}");
    }
    let sessions = env.admin(Method::GET, "/sessions?all=true", Value::Null).await;
    assert_eq!(sessions["items"].as_array().unwrap().len(), 0, "a refused post changed nothing");
    // With the page's own token and origin it works.
    let r = launch(Some(env.url("")), Some(&csrf)).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()[header::LOCATION].to_str().unwrap().starts_with("/console/sessions/"));
}

/// A page on another origin (another port of 127.0.0.1: the same *site*, so `SameSite=Lax`
/// alone would let the cookie through) that submits a form to the console at once.
#[tokio::test]
async fn a_cross_site_form_post_from_a_real_browser_is_refused() {
    let env = ConsoleEnv::start().await;
    env.admin(Method::PUT, "/apps/usd-validate", portico_tests::app_body("usd-validate")).await;
    let target = env.url("/console/apps/usd-validate/launch");
    let evil = EvilSite::start(format!(
        "<!doctype html><title>win a prize</title><form id=f method=post action=\"{target}\">\
         <input name=_csrf value=guess><button id=go>go</button></form>"
    ))
    .await;
    let browser = Browser::start().await;
    // An administrator, who could start a session: only the forgery stops it.
    super::sign_in(&env, &browser, "root", ADMIN_PASSWORD).await;
    browser.client.goto(&evil.url).await.unwrap();
    browser.client.find(Locator::Id("go")).await.unwrap().click().await.unwrap();
    let refused = browser.client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("p.alert")).await;
    let text = refused.expect("the console answered with its refusal").text().await.unwrap();
    assert!(text.contains("did not come from this console"), "{text}");
    browser.screenshot("console-csrf-refused").await;
    let sessions = env.admin(Method::GET, "/sessions?all=true", Value::Null).await;
    assert_eq!(sessions["items"].as_array().unwrap().len(), 0, "no session was started");
    browser.client.clone().close().await.unwrap();
}

/// A one-page web site on 127.0.0.1, stopped when dropped.
struct EvilSite {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EvilSite {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EvilSite {
    async fn start(html: String) -> EvilSite {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        EvilSite { url, task }
    }
}
