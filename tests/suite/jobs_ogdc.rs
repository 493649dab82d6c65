//! Recipes read from an allow-listed `github://` source, and the OGDC service's API under
//! `/ogdc`, driven by the real `ogdc-runner` 0.3.0 CLI (PyPI) as OGDC's users drive it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::StatusCode as HttpStatus;
use portico_core::web::{self, ApiRequest, ApiResponse, RouteGroup};
use portico_core::{Config, Error};
use portico_local::{HttpApi, Running};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::jobs::Farm;

const META: &str = "name: Seal Tags\nworkflow: {type: shell, sh_file: run.sh}\ninput: {params: [{type: url, value: 'https://data.example.org/tags.csv'}]}\n";
const STEPS: &str = "sort /input_dir/tags.csv > /output_dir/sorted.csv\n";

/// What a raw-content host serves: path → (status, body or redirect target).
type Files = Arc<Mutex<HashMap<String, (u16, String)>>>;

/// A raw-content host: `GET /{org}/{repo}/{ref}/{path}` answers a stored file, a 404, or a
/// redirect.
struct RawFiles(Files, Config);

#[async_trait::async_trait]
impl RouteGroup for RawFiles {
    fn name(&self) -> &'static str {
        "raw-files"
    }
    fn route_keys(&self) -> Vec<String> {
        vec!["ANY /{proxy+}".into()]
    }
    fn config(&self) -> &Config {
        &self.1
    }
    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let Some((status, body)) = self.0.lock().unwrap().get(req.uri().path()).cloned() else {
            return Err(web::no_route(req));
        };
        let mut r = http::Response::new(if status == 200 { body.clone() } else { String::new() });
        *r.status_mut() = HttpStatus::from_u16(status).unwrap();
        if status == 302 {
            r.headers_mut().insert(http::header::LOCATION, body.parse().unwrap());
        }
        Ok(r)
    }
}

async fn raw_host() -> Running {
    raw_host_serving(files()).await.0
}

async fn raw_host_serving(files: HashMap<String, (u16, String)>) -> (Running, Files) {
    let files = Arc::new(Mutex::new(files));
    let api = HttpApi::new(vec![Arc::new(RawFiles(Arc::clone(&files), Config::default()))]);
    (portico_local::start(api, 0).await.unwrap(), files)
}

fn files() -> HashMap<String, (u16, String)> {
    HashMap::from([
        ("/farm/recipes/v1/seal-tags/meta.yml".to_owned(), (200, META.to_owned())),
        ("/farm/recipes/v1/seal-tags/run.sh".to_owned(), (200, STEPS.to_owned())),
        ("/farm/recipes/v1/seal-zip/meta.yml".to_owned(), (200, format!("{META}output: {{type: temporary}}\n"))),
        ("/farm/recipes/v1/seal-zip/run.sh".to_owned(), (200, STEPS.to_owned())),
        ("/farm/recipes/v1/huge/meta.yml".to_owned(), (200, format!("name: Huge\n# {}\n", "x".repeat(70 * 1024)))),
        ("/farm/recipes/v1/moved/meta.yml".to_owned(), (302, "http://169.254.169.254/latest/meta-data".to_owned())),
        ("/elsewhere/recipes/v1/seal-tags/meta.yml".to_owned(), (200, META.to_owned())),
    ])
}

async fn farm(raw: &Running) -> Farm {
    let base = raw.url();
    Farm::start(move |c| {
        c.recipe_github_base_url = base;
        c.recipe_github_allow = vec!["farm/recipes".into()];
    })
    .await
}

#[tokio::test]
async fn recipes_are_read_only_from_allow_listed_sources_within_limits() {
    let raw = raw_host().await;
    let farm = farm(&raw).await;
    let (status, job) = farm.submit("carol", None, &json!({"source": "github://farm:recipes@v1/seal-tags"})).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["recipe"], "seal-tags");
    let received = farm.argo.received.lock().unwrap().clone();
    let created = received.iter().find(|r| r.method == Method::POST).unwrap();
    assert!(created.body.to_string().contains(&base64_of(STEPS.trim_end())), "the fetched step file runs");

    for (source, says) in [
        ("github://elsewhere:recipes@v1/seal-tags", "not allowed here"),
        ("github://farm:recipes@v1/huge", "larger than"),
        ("github://farm:recipes@v1/moved", "redirected off itself"),
        ("github://farm:recipes@v1/absent", "does not exist"),
        ("https://raw.githubusercontent.com/farm/recipes/v1/seal-tags", "github://"),
    ] {
        let (status, body) = farm.submit("carol", None, &json!({"source": source})).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::BAD_REQUEST, &json!("invalid_recipe_source")),
            "{source}: {body}"
        );
        assert!(body["message"].as_str().unwrap().contains(says), "{source}: {body}");
    }
    assert_eq!(farm.argo.created(), 1);
}

#[tokio::test]
async fn a_recipe_host_redirecting_to_another_port_or_scheme_of_itself_is_refused() {
    // Another service on the same host (another port) serving a recipe that would be accepted.
    let (elsewhere, _) = raw_host_serving(files()).await;
    let (raw, served) = raw_host_serving(files()).await;
    let same_host_other_scheme = raw.url().replacen("http://", "https://", 1);
    for (name, target) in [("moved-port", elsewhere.url()), ("moved-scheme", same_host_other_scheme)] {
        let location = format!("{target}/farm/recipes/v1/seal-tags/meta.yml");
        served.lock().unwrap().insert(format!("/farm/recipes/v1/{name}/meta.yml"), (302, location));
    }
    let farm = farm(&raw).await;
    for name in ["moved-port", "moved-scheme"] {
        let source = format!("github://farm:recipes@v1/{name}");
        let (status, body) = farm.submit("carol", None, &json!({ "source": source })).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::BAD_REQUEST, &json!("invalid_recipe_source")),
            "{name}: {body}"
        );
        assert!(body["message"].as_str().unwrap().contains("redirected off itself"), "{name}: {body}");
    }
    assert_eq!(farm.argo.created(), 0, "no job from another port or scheme");
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

async fn form(farm: &Farm, path: &str, token: Option<&str>, fields: &[(&str, &str)]) -> (StatusCode, Value) {
    let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
    let r = farm
        .api
        .req(Method::POST, path, token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test]
async fn the_ogdc_routes_answer_in_ogdcs_shapes_and_check_who_asks() {
    let raw = raw_host().await;
    let farm = farm(&raw).await;
    let admin = farm.api.admin_token();
    let runner = [
        (Method::POST, "/admin/roles", json!({"name": "ogdc-user"})),
        (Method::POST, "/admin/roles/ogdc-user/permissions", json!({"group": "jobs", "action": "job.submit"})),
    ];
    for (m, p, b) in runner {
        assert!(farm.api.req(m, p, Some(&admin)).json(&b).send().await.unwrap().status().is_success());
    }
    let (status, body) =
        form(&farm, "/ogdc/create_user", Some(&admin), &[("username", "erin"), ("password", "a-long-passphrase")])
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["message"].as_str().unwrap().contains("role ogdc-user"), "{body}");
    let (status, body) =
        form(&farm, "/ogdc/create_user", Some(&admin), &[("username", "erin"), ("password", "a-long-passphrase")])
            .await;
    assert_eq!((status, body["detail"].as_str().unwrap()), (StatusCode::CONFLICT, "User erin already exists."));
    let carol = farm.api.token("carol");
    let (status, body) =
        form(&farm, "/ogdc/create_user", Some(&carol), &[("username", "frank"), ("password", "a-long-passphrase")])
            .await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"detail": "Access token must belong to admin."})));

    let (status, body) =
        form(&farm, "/ogdc/token", None, &[("username", "erin"), ("password", "wrong-passphrase")]).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"detail": "Incorrect username or password."})));
    let (status, token) =
        form(&farm, "/ogdc/token", None, &[("username", "erin"), ("password", "a-long-passphrase")]).await;
    assert_eq!((status, &token["token_type"]), (StatusCode::OK, &json!("Bearer")), "{token}");
    let expiry = token["utc_expiration"].as_str().unwrap();
    assert!(
        expiry.ends_with('Z')
            && time::OffsetDateTime::parse(expiry, &time::format_description::well_known::Rfc3339).is_ok()
    );
    let erin = token["access_token"].as_str().unwrap();

    let submitted = farm
        .api
        .req(Method::POST, "/ogdc/submit", Some(erin))
        .json(&json!({"recipe_path": "github://farm:recipes@v1/seal-tags", "overwrite": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), StatusCode::OK);
    let submitted: Value = submitted.json().await.unwrap();
    let name = submitted["recipe_workflow_name"].as_str().unwrap().to_owned();
    assert!(submitted["message"].as_str().unwrap().contains(&name));
    let status_of = |token: String| {
        let path = format!("/ogdc/status/{name}");
        let req = farm.api.req(Method::GET, &path, Some(&token));
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = status_of(erin.to_owned()).await;
    assert_eq!((status, &body["recipe_workflow_name"]), (StatusCode::OK, &json!(name)), "{body}");
    // Not OGDC 0.3.0: another user's workflow is not theirs to see, nor its output.
    let (status, body) = status_of(carol.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["detail"].is_string());
    let r = farm.api.req(Method::GET, &format!("/ogdc/output/{name}"), Some(&carol)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (status, body) = farm.call(Method::GET, "/ogdc/user", "erin", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"current_user": "erin"})));
    let r = farm.api.req(Method::GET, "/ogdc/version", None).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"ogdc_runner_version": "0.3.0"}));
    let r = farm.api.req(Method::POST, "/ogdc/submit", None).json(&json!({"recipe_path": "x"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "every route checks the token");
}

/// Runs the CLI with `OGDC_API_URL` at the emulator; returns (success, stdout + stderr).
async fn ogdc_runner(farm: &Farm, user: &str, password: &str, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(portico_tests::ogdc_runner())
        .args(args)
        .env("OGDC_API_URL", format!("{}/ogdc", farm.api.url("")))
        .env("OGDC_API_USERNAME", user)
        .env("OGDC_API_PASSWORD", password)
        .output()
        .await
        .expect("ogdc-runner runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test]
async fn the_real_ogdc_runner_cli_works_unchanged() {
    let raw = raw_host().await;
    let farm = farm(&raw).await;
    let admin = farm.api.admin_token();
    for (m, p, b) in [
        (Method::POST, "/admin/roles", json!({"name": "ogdc-user"})),
        (Method::POST, "/admin/roles/ogdc-user/permissions", json!({"group": "jobs", "action": "job.submit"})),
        (Method::PUT, "/admin/users/ada/password", json!({"password": "the-admins-passphrase"})),
    ] {
        let r = farm.api.req(m, p, Some(&admin)).json(&b).send().await.unwrap();
        assert!(r.status().is_success(), "{p}: {}", r.text().await.unwrap());
    }
    let (ok, out) =
        ogdc_runner(&farm, "ada", "the-admins-passphrase", &["create-user", "gina", "gina-passphrase-1"]).await;
    assert!(ok && out.contains("Successfully created user gina"), "{out}");
    let (ok, out) = ogdc_runner(&farm, "gina", "gina-passphrase-1", &["create-user", "hal", "hal-passphrase-12"]).await;
    assert!(!ok && out.contains("Access token must belong to admin."), "{out}");

    let (ok, out) =
        ogdc_runner(&farm, "gina", "gina-passphrase-1", &["submit", "--wait", "github://farm:recipes@v1/seal-tags"])
            .await;
    assert!(ok, "{out}");
    let name = out.split_whitespace().find(|w| w.starts_with("portico-")).expect("the workflow's name").to_owned();
    assert!(out.contains("Succeeded"), "--wait ends on success: {out}");
    let (ok, out) = ogdc_runner(&farm, "gina", "gina-passphrase-1", &["check-workflow-status", &name]).await;
    assert!(ok && out.contains(&format!("Workflow {name} has status Succeeded.")), "{out}");
    let (ok, out) = ogdc_runner(&farm, "gina", "wrong-passphrase", &["check-workflow-status", &name]).await;
    assert!(!ok && out.contains("401"), "{out}");

    // A temporary output downloads as a zip through its time-limited link.
    let (ok, out) =
        ogdc_runner(&farm, "gina", "gina-passphrase-1", &["submit", "--wait", "github://farm:recipes@v1/seal-zip"])
            .await;
    assert!(ok, "{out}");
    let name = out.split_whitespace().find(|w| w.starts_with("portico-")).unwrap().to_owned();
    let dir = std::env::temp_dir().join(portico_tests::unique("ogdc-output"));
    std::fs::create_dir_all(&dir).unwrap();
    let (ok, out) =
        ogdc_runner(&farm, "gina", "gina-passphrase-1", &["get-output", &name, "--output-dir", dir.to_str().unwrap()])
            .await;
    assert!(ok, "{out}");
    let zip = std::fs::read(dir.join("output.zip")).unwrap();
    assert!(zip.starts_with(b"PK\x03\x04"), "a zip was written");
    std::fs::remove_dir_all(dir).unwrap();
}
