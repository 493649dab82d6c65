//! The web console in a real browser (Debian's headless Chromium over WebDriver) and over
//! plain HTTP for what a browser hides (cookie flags, headers, cross-site posts). Every
//! browser test saves screenshots to `target/test-output/console-*.png`.

mod accessibility;
mod admin_pages;
mod browser_flows;
mod desktops_pages;
mod jobs_pages;
mod oidc_real_provider;
mod oidc_signin;
mod security;
mod sessions_pages;

use std::sync::Arc;
use std::time::Duration;

use fantoccini::Locator;
use portico_core::store::memory::MemoryTable;
use portico_local::Running;
use portico_tests::browser::Browser;
use portico_tests::{TestApi, test_config};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

/// The administrator's and a plain user's passwords in these tests.
pub const ADMIN_PASSWORD: &str = "console-Admin-passphrase-1";
pub const USER_PASSWORD: &str = "console-User-passphrase-2";

/// The emulator with the demo streaming platform and the demo Argo, an administrator `root`
/// and a plain user `lena`, both with passwords.
pub struct ConsoleEnv {
    pub api: TestApi,
    _argo: Running,
}

impl ConsoleEnv {
    pub async fn start() -> ConsoleEnv {
        Self::start_tuned(|_| {}).await
    }

    /// As [`ConsoleEnv::start`], with `tune` applied to the configuration.
    pub async fn start_tuned(tune: impl FnOnce(&mut portico_core::Config)) -> ConsoleEnv {
        let mut config = test_config();
        tune(&mut config);
        config.bootstrap_admins.push("root".into());
        let timing = (Duration::from_millis(300), Duration::from_millis(300));
        let (_, argo) = portico_local::demo_argo::serve(&mut config, timing).await.unwrap();
        let api = TestApi::start_with_demo_platform(Arc::new(MemoryTable::new()), config).await;
        let env = ConsoleEnv { api, _argo: argo };
        for (user, password) in [("root", ADMIN_PASSWORD), ("lena", USER_PASSWORD)] {
            env.admin(Method::POST, "/admin/users", json!({"username": user, "password": password})).await;
        }
        env
    }

    /// An API call as the bootstrap administrator that must succeed.
    pub async fn admin(&self, method: Method, path: &str, body: Value) -> Value {
        let token = self.api.admin_token();
        let r = self.api.req(method, path, Some(&token)).json(&body).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub fn url(&self, path: &str) -> String {
        self.api.url(path)
    }
}

/// Signs `user` in through the console's form in `browser`.
pub async fn sign_in(env: &ConsoleEnv, browser: &Browser, user: &str, password: &str) {
    let c = &browser.client;
    c.goto(&env.url("/console")).await.unwrap();
    c.wait().for_element(Locator::Id("f-username")).await.unwrap().send_keys(user).await.unwrap();
    c.find(Locator::Id("f-password")).await.unwrap().send_keys(password).await.unwrap();
    c.find(Locator::Css("form.card button[type=submit]")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("form.signout")).await.expect("signed in");
}

/// The text of the page's `main` element.
pub async fn main_text(browser: &Browser) -> String {
    browser.client.find(Locator::Css("main")).await.unwrap().text().await.unwrap()
}

/// Waits until `main` contains `text` (at most 20 s).
pub async fn wait_for_text(browser: &Browser, text: &str) {
    let xpath = format!("//main//*[contains(normalize-space(.), {})]", xpath_literal(text));
    if browser.client.wait().at_most(Duration::from_secs(20)).for_element(Locator::XPath(&xpath)).await.is_err() {
        panic!("'{text}' never appeared; the page says:\n{}", main_text(browser).await);
    }
}

fn xpath_literal(text: &str) -> String {
    if text.contains('\'') { format!("\"{text}\"") } else { format!("'{text}'") }
}

/// Waits until the browser's URL has `part` in its query (at most 20 s).
pub async fn wait_for_query(browser: &Browser, part: &str) {
    for _ in 0..200 {
        if browser.client.current_url().await.unwrap().query().is_some_and(|q| q.contains(part)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the URL never had {part}");
}

/// A client that shows redirects instead of following them, posting urlencoded forms.
pub fn http() -> reqwest::Client {
    let form =
        header::HeaderMap::from_iter([(header::CONTENT_TYPE, "application/x-www-form-urlencoded".parse().unwrap())]);
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).default_headers(form).build().unwrap()
}

/// A urlencoded form body.
pub fn encode(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// The value of the first hidden field `name` in `html`.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html.find(&marker).unwrap_or_else(|| panic!("no field {name}"));
    let rest = &html[at + marker.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// `path` with the session cookie `cookie` (`name=value`).
pub async fn get(env: &ConsoleEnv, cookie: &str, path: &str) -> reqwest::Response {
    http().get(env.url(path)).header(header::COOKIE, cookie).send().await.unwrap()
}

/// A form post from the console's own origin.
pub async fn post(env: &ConsoleEnv, cookie: &str, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
    let request = http().post(env.url(path)).header(header::COOKIE, cookie).header(header::ORIGIN, env.url(""));
    request.body(encode(pairs)).send().await.unwrap()
}

/// The answer's `Set-Cookie` lines.
pub fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

/// The `name=value` pair of the cookie `name` among `cookies`.
pub fn cookie_pair(cookies: &[String], name: &str) -> String {
    let c = cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {cookies:?}"));
    c.split(';').next().unwrap().to_owned()
}

/// The sign-in form over HTTP: its binding cookie (`name=value`) and its `_pre` field.
pub async fn signin_form(env: &ConsoleEnv) -> (String, String) {
    let form = http().get(env.url("/console/signin")).send().await.unwrap();
    let pre = cookie_pair(&set_cookies(&form), "portico_console_pre");
    (pre, hidden(&form.text().await.unwrap(), "_pre"))
}

/// Signs in over HTTP; the session cookie's whole `Set-Cookie` line and its `name=value`.
pub async fn http_sign_in(env: &ConsoleEnv, user: &str, password: &str) -> (String, String) {
    let (pre, pre_field) = signin_form(env).await;
    let r = http()
        .post(env.url("/console/signin"))
        .header(header::COOKIE, &pre)
        .header(header::ORIGIN, env.url(""))
        .body(encode(&[
            ("_pre", pre_field.as_str()),
            ("then", "/console/apps"),
            ("username", user),
            ("password", password),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    assert_eq!(r.headers()[header::LOCATION], "/console/apps");
    let cookies = set_cookies(&r);
    let line = cookies.iter().find(|c| c.starts_with("portico_console=")).unwrap().clone();
    (line, cookie_pair(&cookies, "portico_console"))
}
