//! My jobs in the console: a registered template and an uploaded recipe submitted through the
//! forms and watched to success by the page's script, the output link, the API's refusals
//! beside the field they name, cancelling, one job per double submit, and who may do what.

use std::sync::Arc;
use std::time::Duration;

use fantoccini::Locator;
use portico_core::store::memory::MemoryTable;
use portico_local::demo_argo::DemoArgo;
use portico_local::demo_store::DemoStore;
use portico_tests::browser::Browser;
use portico_tests::{TestApi, test_config};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use super::{ADMIN_PASSWORD, ConsoleEnv, USER_PASSWORD, get, http_sign_in, main_text, post, sign_in, wait_for_text};

const META: &str = "name: Tide Gauge\nworkflow: {type: shell}\ninput: {params: [{type: url, value: 'https://data.example.org/tides.csv'}]}\n";
const TEMPORARY_META: &str = "name: Tide Gauge\nworkflow: {type: shell}\noutput: {type: temporary}\ninput: {params: [{type: url, value: 'https://data.example.org/tides.csv'}]}\n";
const STEPS: &str =
    "head -n 5 /input_dir/tides.csv > /output_dir/head.csv\nwc -l /output_dir/head.csv > /output_dir/count\n";
const VISUALIZATION_META: &str =
    "name: x\nworkflow: {type: visualization}\ninput: {params: [{type: url, value: 'https://h/x'}]}\n";

/// [`ConsoleEnv`] with the demo Argo's handle (to set its timing and read what it was sent)
/// and the stand-in bucket of temporary outputs.
struct JobsEnv {
    env: ConsoleEnv,
    argo: Arc<DemoArgo>,
    outputs: DemoStore,
}

/// As [`ConsoleEnv::start`], with workflows spending `timing` Pending, then Running.
async fn jobs_env(timing: (Duration, Duration)) -> JobsEnv {
    let mut config = test_config();
    config.bootstrap_admins.push("root".into());
    let (argo, server) = portico_local::demo_argo::serve(&mut config, timing).await.unwrap();
    let outputs = DemoStore::start().await.unwrap();
    let links = outputs.links();
    let api = TestApi::start_tuned(Arc::new(MemoryTable::new()), config, |p| p.jobs.output_links = Some(links)).await;
    let env = ConsoleEnv { api, _argo: server };
    for (user, password) in [("root", ADMIN_PASSWORD), ("lena", USER_PASSWORD)] {
        env.admin(Method::POST, "/admin/users", json!({"username": user, "password": password})).await;
    }
    JobsEnv { env, argo, outputs }
}

const FAST: (Duration, Duration) = (Duration::from_millis(300), Duration::from_millis(300));

/// The value of the first hidden field `name` after `from` in `html`.
fn field_after(html: &str, from: &str, name: &str) -> String {
    let start = html.find(from).unwrap_or_else(|| panic!("no {from} in the page"));
    let marker = format!("name=\"{name}\" value=\"");
    let at = html[start..].find(&marker).unwrap_or_else(|| panic!("no field {name} after {from}")) + start;
    let rest = &html[at + marker.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The jobs page's CSRF token and the idempotency key of the form of `kind`.
async fn form_of(env: &ConsoleEnv, cookie: &str, kind: &str) -> (String, String) {
    let html = get(env, cookie, "/console/jobs").await.text().await.unwrap();
    let marker = format!("name=\"kind\" value=\"{kind}\"");
    (field_after(&html, "<main", "_csrf"), field_after(&html, &marker, "key"))
}

/// A bodyless API call as the bootstrap administrator that must succeed; its JSON answer.
async fn admin_call(env: &ConsoleEnv, method: Method, path: &str) -> Value {
    let r = env.api.req(method, path, Some(&env.api.admin_token())).send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Every job, as an administrator sees them.
async fn all_jobs(env: &ConsoleEnv) -> Vec<Value> {
    admin_call(env, Method::GET, "/jobs?all=true").await["items"].as_array().unwrap().clone()
}

/// The browser's session cookie, for what the test checks over HTTP.
async fn browser_cookie(browser: &Browser) -> String {
    let c = browser.client.get_named_cookie("portico_console").await.unwrap();
    format!("portico_console={}", c.value())
}

/// Waits until the browser is on a job's page; its id.
async fn wait_for_job_page(browser: &Browser) -> String {
    for _ in 0..200 {
        let url = browser.client.current_url().await.unwrap();
        if let Some(id) = url.path().strip_prefix("/console/jobs/").filter(|id| id.len() == 36 && !id.contains('/')) {
            return id.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never on a job's page; the page says:\n{}", main_text(browser).await);
}

/// Waits (20 s at most) for the element at `css`.
async fn wait_for(browser: &Browser, css: &str) -> fantoccini::elements::Element {
    match browser.client.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css(css)).await {
        Ok(e) => e,
        Err(_) => panic!("{css} never appeared; the page says:\n{}", main_text(browser).await),
    }
}

/// Types an uploaded recipe into the form and submits it.
async fn submit_recipe(browser: &Browser, meta: &str, steps: &str) {
    let c = &browser.client;
    c.find(Locator::Id("f-meta_yml")).await.unwrap().send_keys(meta).await.unwrap();
    c.find(Locator::Id("f-steps")).await.unwrap().send_keys(steps).await.unwrap();
    c.find(Locator::Css("section[aria-labelledby=upload-recipe] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_template_submitted_from_the_form_is_watched_by_the_page_to_success() {
    // Slow enough that the page is seen Pending, then (the script polls every 2 s) Running.
    let jobs = jobs_env((Duration::from_millis(1500), Duration::from_secs(4))).await;
    let env = &jobs.env;
    let template = crate::jobs::reproject_template();
    env.admin(Method::PUT, "/recipes/reproject", template).await;

    let browser = Browser::start().await;
    sign_in(env, &browser, "root", ADMIN_PASSWORD).await;
    let c = &browser.client;
    c.goto(&env.url("/console/jobs")).await.unwrap();
    let text = main_text(&browser).await;
    for expected in
        ["You have not submitted any jobs yet.", "Reprojects a raster", "epsg (required), matching [0-9]{4,5}"]
    {
        assert!(text.contains(expected), "{expected} not on the page:\n{text}");
    }
    c.find(Locator::Id("f-template")).await.unwrap().select_by_value("reproject").await.unwrap();
    c.find(Locator::Id("f-parameters")).await.unwrap().send_keys("epsg=3413").await.unwrap();
    c.find(Locator::Css("section[aria-labelledby=run-template] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let id = wait_for_job_page(&browser).await;
    // Rendered unfinished: the badge names where the script reads the phase.
    let badge = wait_for(&browser, "span.status[data-refresh]").await;
    assert_eq!(badge.attr("data-refresh").await.unwrap().unwrap(), format!("/console/jobs/{id}/status"));
    assert_eq!(badge.attr("data-status").await.unwrap().as_deref(), Some("Pending"));
    // The script moves the badge on while the page stays, then reloads the finished page.
    wait_for(&browser, "span.status[data-refresh][data-status=Running]").await;
    wait_for(&browser, "span.status[data-status=Succeeded]:not([data-refresh])").await;
    wait_for_text(&browser, "demo engine: run done").await;
    let text = main_text(&browser).await;
    for expected in [id.as_str(), "reproject", "root", "the template decides where its outputs go"] {
        assert!(text.contains(expected), "{expected} not on the job page:\n{text}");
    }
    let output_link = c.find(Locator::LinkText("Where the output is")).await;
    assert!(output_link.is_err(), "a template's outputs are not the console's to show");
    assert!(c.find(Locator::Css("button.danger")).await.is_err(), "no cancel button once finished");
    browser.screenshot("console-job-succeeded").await;

    // The form's parameter reached Argo, with the declared default beside it.
    let submitted = jobs.argo.received.lock().unwrap().iter().find(|r| r.path.ends_with("/submit")).cloned().unwrap();
    assert_eq!(submitted.body["submitOptions"]["parameters"], json!(["epsg=3413", "label=run"]));
    // The list shows it, finished, linked to its page.
    c.goto(&env.url("/console/jobs")).await.unwrap();
    let row = c.find(Locator::Css(&format!("a[href='/console/jobs/{id}']"))).await.unwrap();
    assert_eq!(row.text().await.unwrap(), id);
    let text = main_text(&browser).await;
    assert!(text.contains("reproject (Template)") && text.contains("Succeeded"), "{text}");
    browser.screenshot("console-jobs").await;
    c.clone().close().await.unwrap();
}

#[tokio::test]
async fn an_uploaded_recipe_succeeds_and_its_output_link_leads_to_the_bucket() {
    let jobs = jobs_env(FAST).await;
    let env = &jobs.env;
    let browser = Browser::start().await;
    sign_in(env, &browser, "root", ADMIN_PASSWORD).await;
    browser.client.goto(&env.url("/console/jobs")).await.unwrap();
    submit_recipe(&browser, TEMPORARY_META, STEPS).await;
    let id = wait_for_job_page(&browser).await;
    wait_for(&browser, "span.status[data-status=Succeeded]:not([data-refresh])").await;
    wait_for_text(&browser, "step-2 done").await;
    let link = browser.client.find(Locator::LinkText("Download the output")).await.unwrap();
    let href = link.attr("href").await.unwrap().unwrap();
    assert_eq!(href, format!("/console/jobs/{id}/output"));
    browser.screenshot("console-job-output").await;

    // The job ran the recipe as typed: its two steps between fetch and publish.
    let job = admin_call(env, Method::GET, &format!("/jobs/{id}")).await;
    assert_eq!(
        (&job["recipe"], &job["progress"], &job["owner"]),
        (&json!("tide-gauge"), &json!("4/4"), &json!("root"))
    );
    // The link is a redirect to the API's presigned link in the stand-in bucket: a zip.
    let cookie = browser_cookie(&browser).await;
    let r = get(env, &cookie, &href).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("http://{}/demo-outputs/", jobs.outputs.addr)), "{location}");
    assert!(location.contains("expires="), "{location}");
    let zip = reqwest::get(&location).await.unwrap();
    assert_eq!(zip.status(), StatusCode::OK);
    assert!(zip.bytes().await.unwrap().starts_with(b"PK\x03\x04"), "a zip");
    // Nobody else gets it.
    let (_, lenas) = http_sign_in(env, "lena", USER_PASSWORD).await;
    assert_eq!(get(env, &lenas, &href).await.status(), StatusCode::NOT_FOUND);
    browser.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_bad_recipe_shows_the_apis_error_beside_its_field_and_makes_no_job() {
    let jobs = jobs_env(FAST).await;
    let env = &jobs.env;
    let browser = Browser::start().await;
    sign_in(env, &browser, "root", ADMIN_PASSWORD).await;
    let c = &browser.client;
    c.goto(&env.url("/console/jobs")).await.unwrap();
    submit_recipe(&browser, VISUALIZATION_META, "true").await;
    let error = wait_for(&browser, "#f-meta_yml-error").await;
    assert!(error.text().await.unwrap().contains("visualization recipes are not supported"));
    let meta = c.find(Locator::Id("f-meta_yml")).await.unwrap();
    assert_eq!(meta.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    assert!(meta.attr("aria-describedby").await.unwrap().unwrap().contains("f-meta_yml-error"));
    assert!(meta.prop("value").await.unwrap().unwrap().contains("{type: visualization}"), "what was typed stays");
    assert_eq!(c.find(Locator::Id("f-steps")).await.unwrap().prop("value").await.unwrap().as_deref(), Some("true"));
    assert_eq!(c.current_url().await.unwrap().path(), "/console/jobs");
    browser.screenshot("console-job-refused").await;

    // What the browser does not show: a 400, the message beside its field, never on top.
    let cookie = browser_cookie(&browser).await;
    for (meta, steps, field, says) in [
        (VISUALIZATION_META, "true\n", "f-meta_yml-error", "visualization recipes are not supported"),
        (META, "# only a comment\n", "f-steps-error", "the step file has no steps"),
    ] {
        let (csrf, key) = form_of(env, &cookie, "recipe").await;
        let pairs = [("_csrf", csrf.as_str()), ("kind", "recipe"), ("key", &key), ("meta_yml", meta), ("steps", steps)];
        let r = post(env, &cookie, "/console/jobs", &pairs).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let html = r.text().await.unwrap();
        let at = html.find(&format!("id=\"{field}\"")).unwrap_or_else(|| panic!("no {field}:\n{html}"));
        assert!(html[at..].contains(says), "{says} not beside {field}");
        assert_eq!(html.matches(says).count(), 1, "said once, beside the field");
        let textarea = field.trim_end_matches("-error");
        assert!(html.contains(&format!("href=\"#{textarea}\"")), "the top of the page points at it");
    }
    assert_eq!(all_jobs(env).await, Vec::<Value>::new(), "no job was made");
    assert_eq!(jobs.argo.created(), 0);
    c.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_running_job_is_cancelled_from_its_page() {
    // Running for a minute: long enough to cancel it, never racing its success.
    let jobs = jobs_env((Duration::from_millis(300), Duration::from_secs(60))).await;
    let env = &jobs.env;
    let browser = Browser::start().await;
    sign_in(env, &browser, "root", ADMIN_PASSWORD).await;
    let c = &browser.client;
    c.goto(&env.url("/console/jobs")).await.unwrap();
    submit_recipe(&browser, META, STEPS).await;
    let id = wait_for_job_page(&browser).await;
    wait_for(&browser, "span.status[data-refresh][data-status=Running]").await;
    c.find(Locator::Css("button.danger")).await.unwrap().click().await.unwrap();
    // The script asks first.
    let mut asked = String::new();
    for _ in 0..50 {
        if let Ok(text) = c.get_alert_text().await {
            asked = text;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(asked.contains("Cancel this job?"), "asked: {asked:?}");
    c.accept_alert().await.unwrap();
    wait_for(&browser, "span.status[data-status=Failed]:not([data-refresh])").await;
    wait_for_text(&browser, "cancelled by root").await;
    assert_eq!(c.current_url().await.unwrap().path(), format!("/console/jobs/{id}"), "back on the job's page");
    assert!(c.find(Locator::Css("button.danger")).await.is_err(), "nothing left to cancel");
    browser.screenshot("console-job-cancelled").await;

    let job = admin_call(env, Method::GET, &format!("/jobs/{id}")).await;
    assert_eq!((&job["phase"], &job["message"]), (&json!("Failed"), &json!("cancelled by root")));
    assert!(jobs.argo.received.lock().unwrap().iter().any(|r| r.method == Method::PUT && r.path.ends_with("/stop")));
    // Cancelling again (a second tab): the job's page with the API's refusal.
    let cookie = browser_cookie(&browser).await;
    let html = get(env, &cookie, &format!("/console/jobs/{id}")).await.text().await.unwrap();
    let csrf = field_after(&html, "<body", "_csrf");
    let r = post(env, &cookie, &format!("/console/jobs/{id}/cancel"), &[("_csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("has already finished"));
    c.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_double_submit_makes_one_job_and_the_status_answers_json() {
    let jobs = jobs_env(FAST).await;
    let env = &jobs.env;
    let (_, cookie) = http_sign_in(env, "root", ADMIN_PASSWORD).await;
    let (csrf, key) = form_of(env, &cookie, "recipe").await;
    let pairs = [("_csrf", csrf.as_str()), ("kind", "recipe"), ("key", &key), ("meta_yml", META), ("steps", STEPS)];
    // Both posts of one rendering, at once: each lands on the same job.
    let (a, b) = tokio::join!(post(env, &cookie, "/console/jobs", &pairs), post(env, &cookie, "/console/jobs", &pairs));
    assert_eq!((a.status(), b.status()), (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER));
    let location = a.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert_eq!(b.headers()[header::LOCATION], location.as_str());
    assert!(location.starts_with("/console/jobs/"), "{location}");
    assert_eq!((jobs.argo.created(), all_jobs(env).await.len()), (1, 1), "one workflow, one job");
    // A new rendering is a new job.
    let (csrf, again) = form_of(env, &cookie, "recipe").await;
    assert_ne!(again, key, "every rendering has its own key");
    let pairs = [("_csrf", csrf.as_str()), ("kind", "recipe"), ("key", &again), ("meta_yml", META), ("steps", STEPS)];
    assert_eq!(post(env, &cookie, "/console/jobs", &pairs).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(jobs.argo.created(), 2);

    // The script's status: JSON, finished once the phase is final.
    let status_path = format!("{location}/status");
    let mut last = Value::Null;
    for _ in 0..100 {
        let r = get(env, &cookie, &status_path).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        last = r.json().await.unwrap();
        assert!(last["phase"].is_string() && last["finished"].is_boolean(), "{last}");
        if last["finished"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last, json!({"phase": "Succeeded", "finished": true}));
    // A pvc output: where it is, on a page (no redirect).
    let r = get(env, &cookie, &format!("{location}/output")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("portico-jobs") && html.contains("recipes/tide-gauge"), "{html}");

    // Someone else's job is not there for lena, as the API says.
    let (_, lenas) = http_sign_in(env, "lena", USER_PASSWORD).await;
    assert_eq!(get(env, &lenas, &location).await.status(), StatusCode::NOT_FOUND);
    let r = get(env, &lenas, &status_path).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "not_found");
    let mine = get(env, &lenas, "/console/jobs").await.text().await.unwrap();
    assert!(mine.contains("You have not submitted any jobs yet.") && !mine.contains(&location));
}

#[tokio::test]
async fn template_refusals_and_missing_permissions_are_shown_on_the_form() {
    let jobs = jobs_env(FAST).await;
    let env = &jobs.env;
    let template = json!({"workflow_template": "gdal-reproject",
        "parameters": [{"name": "epsg", "pattern": "[0-9]{4,5}", "required": true}]});
    env.admin(Method::PUT, "/recipes/reproject", template).await;
    let (_, cookie) = http_sign_in(env, "root", ADMIN_PASSWORD).await;
    for (parameters, says) in [
        ("epsg=34a3", "does not match the template's pattern"),
        ("", "'parameters.epsg' is required"),
        ("epsg=3413\nimage=evil:latest", "declares no parameter 'image'"),
        ("epsg 3413", "line 1: write it as name=value"),
    ] {
        let (csrf, key) = form_of(env, &cookie, "template").await;
        let pairs = [
            ("_csrf", csrf.as_str()),
            ("kind", "template"),
            ("key", &key),
            ("template", "reproject"),
            ("parameters", parameters),
        ];
        let r = post(env, &cookie, "/console/jobs", &pairs).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{parameters}");
        let html = r.text().await.unwrap();
        let at = html.find("id=\"f-parameters-error\"").unwrap_or_else(|| panic!("{parameters}: no error:\n{html}"));
        assert!(html[at..].contains(says), "{parameters}: {says} not beside the parameters");
        assert!(html.contains(&format!(">{parameters}</textarea>")), "{parameters}: what was typed stays");
        assert!(html.contains("<option value=\"reproject\" selected>"), "the template stays chosen");
    }
    assert_eq!(jobs.argo.created(), 0, "nothing reached Argo");

    // lena needs job.submit on the default group: without it, the API's refusal on the form.
    let (_, lenas) = http_sign_in(env, "lena", USER_PASSWORD).await;
    let submit = async |key: &str, csrf: &str| {
        let pairs = [("_csrf", csrf), ("kind", "recipe"), ("key", key), ("meta_yml", META), ("steps", STEPS)];
        post(env, &lenas, "/console/jobs", &pairs).await
    };
    let (csrf, key) = form_of(env, &lenas, "recipe").await;
    let r = submit(&key, &csrf).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = r.text().await.unwrap();
    assert!(html.contains("role=\"alert\"") && html.contains("'job.submit' is not granted to 'lena'"), "{html}");
    assert!(html.contains("name: Tide Gauge"), "her recipe stays in the form");
    assert_eq!(jobs.argo.created(), 0);
    env.admin(Method::POST, "/admin/roles", json!({"name": "runner"})).await;
    env.admin(Method::POST, "/admin/roles/runner/permissions", json!({"group": "jobs", "action": "job.submit"})).await;
    admin_call(env, Method::PUT, "/admin/users/lena/roles/runner").await;
    let (csrf, key) = form_of(env, &lenas, "recipe").await;
    let r = submit(&key, &csrf).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    let job = &all_jobs(env).await[0];
    assert_eq!((&job["owner"], &job["group"]), (&json!("lena"), &json!("jobs")));
}
