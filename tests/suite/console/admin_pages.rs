//! The administrators' pages: publishing an app through the form, users and roles made and
//! granted through the forms, an edit from a stale form refused by the API's precondition,
//! everyone's sessions filtered and ended, and a plain user refused on every admin page and
//! form (with her own valid CSRF token) with nothing changed.

use fantoccini::{Client, Locator};
use portico_tests::browser::Browser;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use super::{
    ADMIN_PASSWORD, ConsoleEnv, USER_PASSWORD, get, hidden, http_sign_in, main_text, post, sign_in, wait_for_text,
};

/// The forbidden page's words (the console's own refusal, not the CSRF check's).
const REFUSAL: &str = "These pages are for administrators.";

/// Types `text` into the field with id `id`, replacing what it held.
async fn fill(c: &Client, id: &str, text: &str) {
    let field = c.find(Locator::Id(id)).await.unwrap_or_else(|_| panic!("no field #{id}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// The current value of the field with id `id`.
async fn value_of(c: &Client, id: &str) -> String {
    c.find(Locator::Id(id)).await.unwrap().prop("value").await.unwrap().unwrap_or_default()
}

async fn click_button(c: &Client, label: &str) {
    let xpath = format!("//main//button[normalize-space()='{label}']");
    c.find(Locator::XPath(&xpath)).await.unwrap_or_else(|_| panic!("no button '{label}'")).click().await.unwrap();
}

async fn path_of(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_owned()
}

/// An API answer's status and JSON body, as the bootstrap administrator.
async fn api_get(env: &ConsoleEnv, path: &str) -> (StatusCode, Value) {
    let r = env.api.req(Method::GET, path, Some(&env.api.admin_token())).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_administrator_publishes_an_app_through_the_form_and_it_is_a_card_in_the_catalog() {
    let env = ConsoleEnv::start().await;
    let platform = portico_tests::app_body("unused");
    let browser = Browser::start().await;
    let c = &browser.client;
    sign_in(&env, &browser, "root", ADMIN_PASSWORD).await;
    c.find(Locator::LinkText("Admin")).await.expect("an Admin link for administrators").click().await.unwrap();
    c.wait().for_element(Locator::LinkText("Apps")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::LinkText("Publish a new app")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("f-slug")).await.unwrap();
    fill(c, "f-slug", "mesh-viewer").await;
    fill(c, "f-title", "Mesh Viewer").await;
    fill(c, "f-function_id", platform["function_id"].as_str().unwrap()).await;
    fill(c, "f-function_version_id", platform["function_version_id"].as_str().unwrap()).await;
    fill(c, "f-version", "3.1.4").await;
    fill(c, "f-category", "Viewers").await;
    fill(c, "f-product_area", "Simulation").await;
    fill(c, "f-description", "Looks at meshes.").await;
    // An icon the API refuses: its words beside the icon field, everything typed kept.
    fill(c, "f-icon", "ftp://files.example/mesh.png").await;
    click_button(c, "Publish").await;
    let problem = c.wait().for_element(Locator::Id("f-icon-error")).await.expect("the icon's error beside it");
    assert!(problem.text().await.unwrap().contains("must be an http(s) URL"));
    assert_eq!(value_of(c, "f-title").await, "Mesh Viewer");
    assert_eq!(value_of(c, "f-slug").await, "mesh-viewer");
    assert_eq!(api_get(&env, "/apps/mesh-viewer").await.0, StatusCode::NOT_FOUND, "nothing published yet");

    fill(c, "f-icon", platform["icon"].as_str().unwrap()).await;
    click_button(c, "Publish").await;
    wait_for_text(&browser, "Published: the app is in the catalog.").await;
    assert_eq!(path_of(c).await, "/console/admin/apps/mesh-viewer", "on the app's edit page");
    assert_eq!(value_of(c, "f-category").await, "Viewers");
    let (status, app) = api_get(&env, "/apps/mesh-viewer").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&app["title"], &app["version"], &app["product_area"], &app["description"], &app["group"]),
        (&json!("Mesh Viewer"), &json!("3.1.4"), &json!("Simulation"), &json!("Looks at meshes."), &json!(""))
    );
    assert_eq!(app["image"], Value::Null, "an empty URL field is no URL");

    c.goto(&env.url("/console/apps")).await.unwrap();
    let card = c.wait().for_element(Locator::Css("article[aria-labelledby='app-mesh-viewer']")).await.unwrap();
    let text = card.text().await.unwrap();
    for expected in ["Mesh Viewer", "v3.1.4", "Viewers", "Simulation", "ACTIVE"] {
        assert!(text.contains(expected), "{expected} not on the card:\n{text}");
    }
    browser.screenshot("console-admin-publish").await;
    c.clone().close().await.unwrap();
}

#[tokio::test]
async fn an_administrator_creates_a_user_and_a_role_grants_it_and_the_user_signs_in() {
    let env = ConsoleEnv::start().await;
    let browser = Browser::start().await;
    let c = &browser.client;
    sign_in(&env, &browser, "root", ADMIN_PASSWORD).await;

    c.goto(&env.url("/console/admin/users")).await.unwrap();
    fill(c, "f-username", "nadia").await;
    fill(c, "f-password", "nadia-Passphrase-3").await;
    click_button(c, "Create user").await;
    wait_for_text(&browser, "Created.").await;
    assert_eq!(path_of(c).await, "/console/admin/users/nadia");

    c.goto(&env.url("/console/admin/roles")).await.unwrap();
    fill(c, "f-role", "publishers").await;
    fill(c, "f-description", "Publish the demo group's apps").await;
    click_button(c, "Create role").await;
    wait_for_text(&browser, "Created.").await;
    assert_eq!(path_of(c).await, "/console/admin/roles/publishers");
    c.find(Locator::Id("f-action")).await.unwrap().select_by_value("app.publish").await.unwrap();
    fill(c, "f-group", "demo").await;
    click_button(c, "Add permission").await;
    wait_for_text(&browser, "Permission added.").await;
    let table = c.find(Locator::Css("table")).await.unwrap().text().await.unwrap();
    assert!(table.contains("app.publish") && table.contains("demo"), "{table}");

    c.goto(&env.url("/console/admin/users/nadia")).await.unwrap();
    fill(c, "f-role", "publishers").await;
    click_button(c, "Grant role").await;
    wait_for_text(&browser, "Role granted.").await;
    // A quota the API refuses: its words beside that field, nothing stored.
    for (id, value) in [
        ("f-sessions", "-1"),
        ("f-jobs", "2"),
        ("f-desktops", "2"),
        ("f-cpu", "4000"),
        ("f-memory", "8192"),
        ("f-storage", "50"),
    ] {
        fill(c, id, value).await;
    }
    click_button(c, "Save quota").await;
    let problem = c.wait().for_element(Locator::Id("f-sessions-error")).await.expect("the error beside sessions");
    assert!(problem.text().await.unwrap().contains("must be between 0 and"));
    assert_eq!(value_of(c, "f-cpu").await, "4000", "what was typed is kept");
    fill(c, "f-sessions", "1").await;
    click_button(c, "Save quota").await;
    wait_for_text(&browser, "Quota saved.").await;
    browser.screenshot("console-admin-user").await;

    let (_, nadia) = api_get(&env, "/admin/users/nadia").await;
    assert_eq!(nadia["roles"], json!(["publishers"]));
    assert_eq!(nadia["admin"], false);
    assert_eq!(
        nadia["quota"],
        json!({"sessions": 1, "jobs": 2, "desktops": 2, "cpu": 4000, "memory": 8192, "storage": 50})
    );
    let (_, role) = api_get(&env, "/admin/roles/publishers").await;
    assert_eq!(role["permissions"], json!([{"group": "demo", "action": "app.publish"}]));
    assert_eq!(role["description"], "Publish the demo group's apps");
    c.clone().close().await.unwrap();

    // The new user signs in with the password set for her, and is no administrator.
    let fresh = Browser::start().await;
    sign_in(&env, &fresh, "nadia", "nadia-Passphrase-3").await;
    assert!(fresh.client.find(Locator::LinkText("Admin")).await.is_err(), "no Admin link for nadia");
    assert!(main_text(&fresh).await.contains("Catalog"));
    fresh.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn an_edit_from_a_stale_form_shows_the_apis_precondition_error_and_overwrites_nothing() {
    let env = ConsoleEnv::start().await;
    env.admin(Method::PUT, "/apps/usd-validate", portico_tests::app_body("usd-validate")).await;
    let browser = Browser::start().await;
    let c = &browser.client;
    sign_in(&env, &browser, "root", ADMIN_PASSWORD).await;
    c.goto(&env.url("/console/admin/apps/usd-validate")).await.unwrap();
    c.wait().for_element(Locator::Id("f-title")).await.unwrap();
    fill(c, "f-title", "Mine").await;

    // Meanwhile someone else changes the app through the API.
    let mut elsewhere = portico_tests::app_body("usd-validate");
    elsewhere["title"] = "Changed Elsewhere".into();
    env.admin(Method::PUT, "/apps/usd-validate", elsewhere).await;

    click_button(c, "Save changes").await;
    wait_for_text(&browser, "does not match the request's precondition").await;
    let alert = c.find(Locator::Css("p.alert")).await.unwrap().text().await.unwrap();
    assert!(alert.contains("412") && alert.contains("app 'usd-validate'"), "{alert}");
    assert_eq!(value_of(c, "f-title").await, "Mine", "the form keeps what was typed");
    browser.screenshot("console-admin-stale-edit").await;
    assert_eq!(api_get(&env, "/apps/usd-validate").await.1["title"], "Changed Elsewhere", "not overwritten");

    // Reloading gives the current version, which saves.
    c.find(Locator::LinkText("Reload the current version")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("form.card")).await.unwrap();
    assert_eq!(value_of(c, "f-title").await, "Changed Elsewhere");
    fill(c, "f-title", "Mine").await;
    click_button(c, "Save changes").await;
    wait_for_text(&browser, "Saved.").await;
    assert_eq!(api_get(&env, "/apps/usd-validate").await.1["title"], "Mine");
    c.clone().close().await.unwrap();
}

#[tokio::test]
async fn every_session_is_listed_filtered_by_owner_and_an_administrator_ends_one() {
    let env = ConsoleEnv::start().await;
    env.admin(Method::PUT, "/apps/usd-validate", portico_tests::app_body("usd-validate")).await;
    // A session of lena's, who may stream apps without a group.
    env.admin(Method::POST, "/admin/roles", json!({"name": "streamers"})).await;
    env.admin(Method::POST, "/admin/roles/streamers/permissions", json!({"group": "", "action": "session.start"}))
        .await;
    env.admin(Method::PUT, "/admin/users/lena/roles/streamers", Value::Null).await;
    let r = env.api.req(Method::POST, "/sessions", Some(&env.api.token("lena"))).json(&json!({"app": "usd-validate"}));
    let started: Value = r.send().await.unwrap().json().await.unwrap();
    let id = started["session_id"].as_str().expect("a session").to_owned();
    let (_, cookie) = http_sign_in(&env, "root", ADMIN_PASSWORD).await;

    let html = get(&env, &cookie, "/console/admin/sessions?owner=lena").await.text().await.unwrap();
    assert!(html.contains(&id) && html.contains("Terminate"), "lena's session listed with its button");
    let none = get(&env, &cookie, "/console/admin/sessions?owner=root").await.text().await.unwrap();
    assert!(!none.contains(&id) && none.contains("No sessions match."));
    let stopped = get(&env, &cookie, "/console/admin/sessions?state=stopped").await.text().await.unwrap();
    assert!(!stopped.contains(&id), "a live session is not among the stopped ones");

    let csrf = hidden(&html, "_csrf");
    let fields = [("_csrf", csrf.as_str()), ("owner", "lena"), ("state", ""), ("app", "")];
    let r = post(&env, &cookie, &format!("/console/admin/sessions/{id}/terminate"), &fields).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/console/admin/sessions?owner=lena&done=terminated");
    assert_eq!(api_get(&env, &format!("/sessions/{id}")).await.1["state"], "stopped");
    let after = get(&env, &cookie, "/console/admin/sessions?owner=lena&done=terminated").await.text().await.unwrap();
    assert!(after.contains("Session ended.") && !after.contains("Terminate"), "{after}");
    let stopped = get(&env, &cookie, "/console/admin/sessions?state=stopped").await.text().await.unwrap();
    assert!(stopped.contains(&id) && stopped.contains("stopped_by_admin"), "{stopped}");
}

#[tokio::test]
async fn a_plain_user_sees_no_admin_link_and_every_admin_page_and_form_refuses_her() {
    let env = ConsoleEnv::start().await;
    let app = portico_tests::app_body("usd-validate");
    env.admin(Method::PUT, "/apps/usd-validate", app.clone()).await;
    env.admin(Method::POST, "/admin/roles", json!({"name": "auditors"})).await;
    env.admin(Method::POST, "/admin/roles/auditors/permissions", json!({"group": "demo", "action": "app.delete"}))
        .await;
    env.admin(Method::PUT, "/admin/roles/auditors/quota", json!({"sessions": 3})).await;
    env.admin(Method::PUT, "/admin/users/root/roles/auditors", Value::Null).await;
    env.admin(Method::PUT, "/admin/users/lena/quota", json!({"sessions": 1})).await;
    let session = env.admin(Method::POST, "/sessions", json!({"app": "usd-validate"})).await;
    let session = session["session_id"].as_str().unwrap().to_owned();
    let before = snapshot(&env).await;

    // The navigation: root's pages link to the admin pages, lena's do not.
    let (_, root) = http_sign_in(&env, "root", ADMIN_PASSWORD).await;
    let (_, lena) = http_sign_in(&env, "lena", USER_PASSWORD).await;
    let root_catalog = get(&env, &root, "/console/apps").await.text().await.unwrap();
    assert!(root_catalog.contains("href=\"/console/admin\""));
    let html = get(&env, &lena, "/console/apps").await.text().await.unwrap();
    assert!(!html.contains("/console/admin"), "no admin link for lena");
    let csrf = hidden(&html, "_csrf");
    let etag = "irrelevant";

    let pages = [
        "/console/admin".to_owned(),
        "/console/admin/apps".into(),
        "/console/admin/apps/new".into(),
        "/console/admin/apps/usd-validate".into(),
        "/console/admin/users".into(),
        "/console/admin/users/lena".into(),
        "/console/admin/roles".into(),
        "/console/admin/roles/auditors".into(),
        "/console/admin/sessions".into(),
        "/console/admin/sessions?owner=root".into(),
        "/console/admin/jobs".into(),
    ];
    for path in pages {
        let r = get(&env, &lena, &path).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "GET {path}");
        assert!(r.text().await.unwrap().contains(REFUSAL), "GET {path}");
    }
    let quota =
        [("sessions", "99"), ("jobs", "99"), ("desktops", "99"), ("cpu", "99"), ("memory", "99"), ("storage", "99")];
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/console/admin/apps".into(),
            vec![("slug", "evil"), ("title", "Evil"), ("function_id", "f"), ("function_version_id", "v")],
        ),
        (
            "/console/admin/apps/usd-validate".into(),
            vec![("title", "Hacked"), ("function_id", "f"), ("function_version_id", "v"), ("_etag", etag)],
        ),
        ("/console/admin/apps/usd-validate/delete".into(), vec![("_etag", etag)]),
        (
            "/console/admin/users".into(),
            vec![("username", "mallory"), ("password", "mallory-Passphrase"), ("admin", "true")],
        ),
        ("/console/admin/users/lena/admin".into(), vec![("admin", "true")]),
        ("/console/admin/users/lena/roles".into(), vec![("role", "auditors")]),
        ("/console/admin/users/root/roles/auditors/revoke".into(), vec![]),
        ("/console/admin/users/lena/quota".into(), quota.to_vec()),
        ("/console/admin/users/lena/quota/clear".into(), vec![]),
        ("/console/admin/users/root/delete".into(), vec![]),
        ("/console/admin/roles".into(), vec![("role", "evil"), ("description", "")]),
        ("/console/admin/roles/auditors/permissions".into(), vec![("group", "*"), ("action", "app.publish")]),
        ("/console/admin/roles/auditors/permissions/remove".into(), vec![("group", "demo"), ("action", "app.delete")]),
        ("/console/admin/roles/auditors/quota".into(), quota.to_vec()),
        ("/console/admin/roles/auditors/quota/clear".into(), vec![]),
        ("/console/admin/roles/auditors/delete".into(), vec![]),
        (format!("/console/admin/sessions/{session}/terminate"), vec![]),
        ("/console/admin/jobs/job-that-is-not-there/cancel".into(), vec![]),
    ];
    for (path, fields) in forms {
        let mut fields = fields;
        fields.push(("_csrf", &csrf));
        let r = post(&env, &lena, &path, &fields).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "POST {path}");
        assert!(r.text().await.unwrap().contains(REFUSAL), "POST {path}: refused as a non-administrator");
    }
    assert_eq!(snapshot(&env).await, before, "nothing changed");
    let (_, live) = api_get(&env, &format!("/sessions/{session}")).await;
    assert_ne!(live["state"], "stopped", "the session was not ended");
}

/// What the refused forms would have changed (sessions apart: their state moves by itself).
async fn snapshot(env: &ConsoleEnv) -> Vec<(StatusCode, Value)> {
    let mut all = Vec::new();
    for path in [
        "/apps?limit=100",
        "/apps/usd-validate",
        "/admin/users?limit=100",
        "/admin/users/root",
        "/admin/users/lena",
        "/admin/roles?limit=100",
        "/admin/roles/auditors",
    ] {
        all.push(api_get(env, path).await);
    }
    all
}
