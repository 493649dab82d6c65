//! My sessions in the console: launching, the live view over the relay (the demo platform
//! echoes each signal), rejoining, stopping; the ticket route the live view's script uses;
//! and the profile page.

use std::time::Duration;

use fantoccini::Locator;
use portico_tests::Ws;
use portico_tests::browser::Browser;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use super::{ADMIN_PASSWORD, ConsoleEnv, USER_PASSWORD, http_sign_in, main_text, sign_in, wait_for_text};

const APP: &str = "usd-validate";

/// Publishes [`APP`] and lets `user` start sessions of it (role `streamer`).
async fn streaming_for(env: &ConsoleEnv, user: &str) {
    env.admin(Method::PUT, &format!("/apps/{APP}"), portico_tests::app_body(APP)).await;
    env.admin(Method::POST, "/admin/roles", json!({"name": "streamer"})).await;
    let grant = json!({"group": "", "action": "session.start"});
    env.admin(Method::POST, "/admin/roles/streamer/permissions", grant).await;
    env.admin(Method::PUT, &format!("/admin/users/{user}/roles/streamer"), Value::Null).await;
}

/// Starts a session of [`APP`] through the API as `user`; its id.
async fn start_session(env: &ConsoleEnv, user: &str) -> String {
    let token = env.api.token(user);
    let r = env.api.req(Method::POST, "/sessions", Some(&token)).json(&json!({"app": APP})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["session_id"].as_str().unwrap().to_owned()
}

async fn session(env: &ConsoleEnv, id: &str) -> Value {
    env.admin(Method::GET, &format!("/sessions/{id}"), Value::Null).await
}

/// Waits until the session's state is `state` (at most 10 s).
async fn wait_for_state(env: &ConsoleEnv, id: &str, state: &str) {
    for _ in 0..100 {
        if session(env, id).await["state"] == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("session {id} never became {state}: {}", session(env, id).await);
}

/// Waits until the live view says it is linked to the app.
async fn wait_connected(browser: &Browser) {
    let linked = Locator::Css("[data-relay] [data-state][data-status='connected']");
    if browser.client.wait().at_most(Duration::from_secs(20)).for_element(linked).await.is_err() {
        panic!("the live view never connected; the page says:\n{}", main_text(browser).await);
    }
}

/// Sends `signal` through the live view's form and waits for the demo app's echo of `word`.
async fn signal_and_see_echo(browser: &Browser, signal: &str, word: &str) -> String {
    let c = &browser.client;
    let field = c.find(Locator::Id("f-signal")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(signal).await.unwrap();
    c.find(Locator::Css("form[data-signal] button[type=submit]")).await.unwrap().click().await.unwrap();
    let echo = format!("//ol[@data-log]/li[contains(., 'echo') and contains(., '{word}')]");
    match c.wait().at_most(Duration::from_secs(20)).for_element(Locator::XPath(&echo)).await {
        Ok(li) => li.text().await.unwrap(),
        Err(_) => panic!("no echo of {word}; the page says:\n{}", main_text(browser).await),
    }
}

/// The row of the sessions table that links to session `id`.
fn row_of(id: &str) -> String {
    format!("//tbody/tr[.//a[@href='/console/sessions/{id}']]")
}

#[tokio::test]
async fn a_user_launches_a_session_signals_the_app_rejoins_and_stops_it() {
    let env = ConsoleEnv::start().await;
    streaming_for(&env, "lena").await;
    let browser = Browser::start().await;
    sign_in(&env, &browser, "lena", USER_PASSWORD).await;
    let c = &browser.client;

    c.goto(&env.url(&format!("/console/apps/{APP}"))).await.unwrap();
    c.find(Locator::XPath("//button[normalize-space()='Launch a session']")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("[data-relay]")).await.expect("the live page");
    let path = c.current_url().await.unwrap().path().to_owned();
    let id = path.strip_prefix("/console/sessions/").expect("on the session's page").to_owned();
    wait_connected(&browser).await;
    let echo = signal_and_see_echo(&browser, r#"{"hello":"portico"}"#, "portico").await;
    assert!(echo.starts_with('←'), "the echo comes from the app: {echo}");
    let sent = c.find(Locator::XPath("//ol[@data-log]/li[starts-with(., '→')]")).await.unwrap().text().await.unwrap();
    assert_eq!(sent, r#"→ {"type":"signal","data":{"hello":"portico"}}"#, "parsed as JSON, sent as a signal");
    browser.screenshot("console-session-live").await;
    let live = session(&env, &id).await;
    assert_eq!((live["state"].as_str(), live["client_connected"].as_bool()), (Some("active"), Some(true)), "{live}");

    // Leaving the page leaves the session idle; the list offers to rejoin it.
    c.find(Locator::LinkText("My sessions")).await.unwrap().click().await.unwrap();
    wait_for_state(&env, &id, "idle").await;
    c.refresh().await.unwrap();
    let row = c.wait().for_element(Locator::XPath(&row_of(&id))).await.expect("the session is listed");
    let text = row.text().await.unwrap();
    assert!(text.contains(APP) && text.contains("idle"), "{text}");
    row.find(Locator::LinkText("Rejoin")).await.unwrap().click().await.unwrap();
    wait_connected(&browser).await;
    signal_and_see_echo(&browser, "again", "again").await;

    // Stopping it from the list ends it for good.
    c.find(Locator::LinkText("My sessions")).await.unwrap().click().await.unwrap();
    let stop = Locator::Css(&format!("form[action='/console/sessions/{id}/stop'] button"));
    c.wait().for_element(stop).await.unwrap().click().await.unwrap();
    c.accept_alert().await.expect("stopping asks first");
    wait_for_text(&browser, "The session has ended.").await;
    let row = c.find(Locator::XPath(&row_of(&id))).await.unwrap().text().await.unwrap();
    assert!(row.contains("stopped") && row.contains("stopped_by_owner"), "{row}");
    assert!(c.find(Locator::Css(&format!("form[action='/console/sessions/{id}/stop']"))).await.is_err());
    let ended = session(&env, &id).await;
    assert_eq!((ended["state"].as_str(), ended["ended_reason"].as_str()), (Some("stopped"), Some("stopped_by_owner")));

    // Its page now says so, and does not try to join.
    c.goto(&env.url(&path)).await.unwrap();
    wait_for_text(&browser, "This session has ended.").await;
    assert!(c.find(Locator::Css("[data-relay]")).await.is_err(), "no live view for an ended session");
    c.clone().close().await.unwrap();
}

/// The console's CSRF token on `path`'s page (its `csrf-token` meta).
async fn csrf_of(env: &ConsoleEnv, cookie: &str, path: &str) -> (StatusCode, String, String) {
    let r = env.api.http.get(env.url(path)).header(header::COOKIE, cookie).send().await.unwrap();
    let status = r.status();
    let html = r.text().await.unwrap();
    let marker = "name=\"csrf-token\" content=\"";
    let at = html.find(marker).map(|i| i + marker.len()).unwrap_or_else(|| panic!("no csrf-token on {path}"));
    (status, html[at..at + html[at..].find('"').unwrap()].to_owned(), html)
}

async fn post(env: &ConsoleEnv, cookie: &str, csrf: &str, path: &str) -> (StatusCode, Option<String>, String) {
    let r = super::http()
        .post(env.url(path))
        .header(header::COOKIE, cookie)
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    let kind = r.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
    (r.status(), kind, r.text().await.unwrap())
}

#[tokio::test]
async fn the_ticket_route_joins_the_relay_and_refuses_in_the_apis_words() {
    let env = ConsoleEnv::start().await;
    streaming_for(&env, "lena").await;
    let mine = start_session(&env, "lena").await;
    let (_, cookie) = http_sign_in(&env, "lena", USER_PASSWORD).await;
    let (status, csrf, html) = csrf_of(&env, &cookie, &format!("/console/sessions/{mine}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("data-ticket-url=\"/console/sessions/{mine}/ticket\"")), "{html}");

    // A ticket for the script: the relay's address and a ticket, which joins the session.
    let (status, kind, text) = post(&env, &cookie, &csrf, &format!("/console/sessions/{mine}/ticket")).await;
    assert_eq!((status, kind.as_deref()), (StatusCode::OK, Some("application/json")), "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    let ws_url = answer["ws_url"].as_str().unwrap();
    assert_eq!(ws_url, env.api.services.config.relay_url, "the address alone; the script adds the ticket");
    let ticket = answer["ticket"].as_str().unwrap();
    let (mut ws, welcome) = Ws::join(&format!("{ws_url}?ticket={ticket}")).await;
    assert_eq!(welcome["side"], "client");
    ws.signal(json!({"hello": "portico"})).await;
    let echo = loop {
        let frame = ws.recv().await.expect("the app's echo");
        if frame["type"] == "signal" {
            break frame["data"].clone();
        }
    };
    assert_eq!(echo, json!({"echo": {"hello": "portico"}}));

    // While that connection is open, a second is refused: JSON, the API's status and words.
    let (status, kind, text) = post(&env, &cookie, &csrf, &format!("/console/sessions/{mine}/ticket")).await;
    assert_eq!((status, kind.as_deref()), (StatusCode::CONFLICT, Some("application/json")), "{text}");
    let refusal: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(refusal["code"], "conflict");
    assert!(refusal["message"].as_str().unwrap().contains("client is connected"), "{refusal}");

    // Another user's session does not exist for lena: no ticket, no stopping it.
    let theirs = start_session(&env, "root").await;
    let (status, _, text) = post(&env, &cookie, &csrf, &format!("/console/sessions/{theirs}/ticket")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["code"], "not_found");
    let (status, _, page) = post(&env, &cookie, &csrf, &format!("/console/sessions/{theirs}/stop")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains(&format!("session '{theirs}' does not exist")), "{page}");
    assert_ne!(session(&env, &theirs).await["state"], "stopped", "lena cannot stop root's session");

    // Without the page's CSRF token, no ticket.
    let (status, _, _) = post(&env, &cookie, "forged", &format!("/console/sessions/{mine}/ticket")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Stopping ends it (and closes the relay connection); then tickets are refused.
    let (status, _, _) = post(&env, &cookie, &csrf, &format!("/console/sessions/{mine}/stop")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let closing = ws.closed().await;
    assert!(closing.iter().any(|f| f["type"] == "session_ended"), "{closing:?}");
    assert_eq!(session(&env, &mine).await["ended_reason"], "stopped_by_owner");
    let (status, _, text) = post(&env, &cookie, &csrf, &format!("/console/sessions/{mine}/ticket")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("the session has ended"), "{text}");
}

#[tokio::test]
async fn the_profile_shows_roles_permissions_quota_and_usage() {
    let env = ConsoleEnv::start().await;
    streaming_for(&env, "lena").await;
    env.admin(Method::POST, "/admin/roles/streamer/permissions", json!({"group": "vfx", "action": "job.submit"})).await;
    let quota = json!({"sessions": 3, "jobs": 5, "cpu": 4000, "memory": 8192, "storage": 50});
    env.admin(Method::PUT, "/admin/users/lena/quota", quota).await;
    start_session(&env, "lena").await;

    let browser = Browser::start().await;
    sign_in(&env, &browser, "lena", USER_PASSWORD).await;
    let c = &browser.client;
    c.find(Locator::LinkText("Profile")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, "Quota and usage").await;
    let text = main_text(&browser).await;
    for expected in [
        "lena",
        "streamer",
        "session.start",
        "the default group",
        "vfx",
        "job.submit",
        "1 of 3 sessions in use",
        "0 of 5 jobs in use",
        "0 of 4000 millicores in use",
        "0 of 8192 MiB in use",
        "0 of 50 GiB in use",
    ] {
        assert!(text.contains(expected), "{expected} not on the profile:\n{text}");
    }
    assert!(text.contains("Administrator\nNo") || text.contains("Administrator No"), "{text}");
    // The meters carry the figures, and their labels name them.
    let meter = c.find(Locator::Css("meter#q-sessions")).await.unwrap();
    assert_eq!(meter.attr("value").await.unwrap().as_deref(), Some("1"));
    assert_eq!(meter.attr("max").await.unwrap().as_deref(), Some("3"));
    let label = c.find(Locator::Css("label[for='q-sessions']")).await.unwrap().text().await.unwrap();
    assert_eq!(label, "Streaming sessions");
    browser.screenshot("console-profile").await;
    c.clone().close().await.unwrap();

    // An administrator is told so, without roles.
    let browser = Browser::start().await;
    sign_in(&env, &browser, "root", ADMIN_PASSWORD).await;
    browser.client.goto(&env.url("/console/profile")).await.unwrap();
    wait_for_text(&browser, "you may do anything").await;
    let text = main_text(&browser).await;
    assert!(text.contains("You hold no roles."), "{text}");
    browser.client.clone().close().await.unwrap();
}
