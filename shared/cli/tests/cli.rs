//! The `portico` binary against the emulator: the README's path from bootstrap admin to a
//! user publishing an app, plus failures and exit codes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use portico_core::store::memory::MemoryTable;
use portico_tests::{TestApi, app_body, test_config, unique};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

struct Cli {
    home: PathBuf,
    url: String,
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Cli {
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Outcome {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_portico"))
            .args(args)
            .env_clear()
            .env("HOME", &self.home)
            .env("PORTICO_URL", &self.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.unwrap();
        }
        drop(input);
        let out = child.wait_with_output().await.unwrap();
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let o = self.run(args, stdin).await;
        assert_eq!(o.code, 0, "portico {args:?}: {}", o.stderr);
        o.stdout
    }
}

#[tokio::test]
async fn from_bootstrap_admin_to_a_user_publishing_an_app() {
    let api = TestApi::start(Arc::new(MemoryTable::new()), test_config()).await;
    // The bootstrap administrator of this configuration gets a password to log in with.
    let r = api
        .req(reqwest::Method::POST, "/admin/users", Some(&api.admin_token()))
        .json(&json!({"username": "root", "password": "root-password", "admin": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let home = std::env::temp_dir().join(unique("portico-cli-home"));
    std::fs::create_dir_all(&home).unwrap();
    let cli = Cli { home: home.clone(), url: api.running.url() };

    cli.ok(&["login", "root", "--password-stdin"], Some("root-password\n")).await;
    let login = home.join(".config/portico/login.json");
    let mode = std::fs::metadata(&login).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the stored token is private");
    assert!(cli.ok(&["whoami"], None).await.contains("root, administrator"));

    cli.ok(&["user", "create", "alice", "--password-stdin"], Some("alice-password\n")).await;
    cli.ok(&["role", "create", "publisher", "--description", "publishes team-a apps"], None).await;
    cli.ok(&["grant", "publisher", "team-a", "app.publish"], None).await;
    cli.ok(&["user", "add-role", "alice", "publisher"], None).await;
    let roles: Value = serde_json::from_str(&cli.ok(&["--json", "role", "list"], None).await).unwrap();
    assert_eq!(roles["items"][0]["name"], "publisher");

    cli.ok(&["login", "alice", "--password-stdin"], Some("alice-password\n")).await;
    let file = write_app(&home, "team-tool", "team-a");
    assert!(cli.ok(&["app", "publish", file.to_str().unwrap()], None).await.contains("published team-tool"));
    let apps: Value = serde_json::from_str(&cli.ok(&["--json", "app", "list"], None).await).unwrap();
    assert_eq!(apps["items"][0]["slug"], "team-tool");
    assert_eq!(apps["items"][0]["group"], "team-a");

    // Refusals: another group, an admin command, a missing file, bad usage, no API.
    let other = write_app(&home, "other-tool", "team-b");
    let o = cli.run(&["app", "publish", other.to_str().unwrap()], None).await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("forbidden") && o.stderr.contains("HTTP 403"), "{}", o.stderr);
    let o = cli.run(&["user", "create", "mallory"], None).await;
    assert_eq!((o.code, o.stderr.contains("HTTP 403")), (1, true), "{}", o.stderr);
    assert_eq!(cli.run(&["app", "publish", "/nonexistent.json"], None).await.code, 1);
    assert_eq!(cli.run(&["frobnicate"], None).await.code, 2);
    let o = cli.run(&["login", "alice", "--password-stdin"], Some("wrong-password\n")).await;
    assert!(o.code == 1 && o.stderr.contains("invalid_grant"), "{}", o.stderr);
    let gone = Cli { home: home.clone(), url: "http://127.0.0.1:9".into() };
    assert_eq!(gone.run(&["app", "list"], None).await.code, 3);

    // Keyrings for Secrets Manager: a rotation adds a signing key in front, keeps the old one.
    let first: Value = serde_json::from_str(&cli.ok(&["keys", "generate"], None).await).unwrap();
    std::fs::write(home.join("keys.json"), first.to_string()).unwrap();
    let rotated: Value =
        serde_json::from_str(&cli.ok(&["keys", "rotate", home.join("keys.json").to_str().unwrap()], None).await)
            .unwrap();
    assert_eq!(rotated["keys"].as_array().unwrap().len(), 2);
    assert_eq!(rotated["keys"][1], first["keys"][0]);
    std::fs::remove_dir_all(&home).ok();
}

fn write_app(dir: &Path, slug: &str, group: &str) -> PathBuf {
    let mut body = app_body(slug);
    body["group"] = json!(group);
    let path = dir.join(format!("{slug}.json"));
    std::fs::write(&path, body.to_string()).unwrap();
    path
}

#[tokio::test]
async fn a_streaming_session_from_the_cli_with_the_demo_platform() {
    use tokio::io::AsyncBufReadExt;
    let api = TestApi::start_with_demo_platform(Arc::new(MemoryTable::new()), test_config()).await;
    let admin = api.admin_token();
    let put = api.req(reqwest::Method::PUT, "/apps/viewer", Some(&admin)).json(&app_body("viewer")).send().await;
    assert_eq!(put.unwrap().status(), 201);
    let user = json!({"username": "root", "password": "root-password", "admin": true});
    api.req(reqwest::Method::POST, "/admin/users", Some(&admin)).json(&user).send().await.unwrap();
    let home = std::env::temp_dir().join(unique("portico-cli-home"));
    std::fs::create_dir_all(&home).unwrap();
    let cli = Cli { home: home.clone(), url: api.running.url() };
    cli.ok(&["login", "root", "--password-stdin"], Some("root-password\n")).await;

    // The demo platform lists the published app as ACTIVE.
    let apps: Value = serde_json::from_str(&cli.ok(&["--json", "app", "list"], None).await).unwrap();
    assert_eq!(apps["items"][0]["status"], "ACTIVE");
    let started: Value = serde_json::from_str(&cli.ok(&["--json", "session", "start", "viewer"], None).await).unwrap();
    let id = started["session_id"].as_str().unwrap().to_owned();

    let mut join = tokio::process::Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["session", "join", started["ws_url"].as_str().unwrap()])
        .env_clear()
        .env("HOME", &home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = join.stdin.take().unwrap();
    let mut frames = tokio::io::BufReader::new(join.stdout.take().unwrap()).lines();
    let mut next_of = async |kind: &str| loop {
        let line = frames.next_line().await.unwrap().expect("a frame before the end");
        let frame: Value = serde_json::from_str(&line).expect("frames print as JSON lines");
        if frame["type"] == kind {
            return frame;
        }
    };
    assert_eq!(next_of("welcome").await["side"], "client");
    next_of("peer_joined").await;
    input.write_all(b"{\"sdp\": \"offer\"}\nplain words\n").await.unwrap();
    assert_eq!(next_of("signal").await["data"], json!({"echo": {"sdp": "offer"}}));
    assert_eq!(next_of("signal").await["data"], json!({"echo": "plain words"}));
    assert!(cli.ok(&["session", "list"], None).await.contains(&format!("{id}\tviewer\tactive\troot")));

    cli.ok(&["session", "stop", &id], None).await;
    assert_eq!(next_of("session_ended").await["reason"], "stopped_by_owner");
    let status = join.wait().await.unwrap();
    assert_eq!(status.code(), Some(0));
    let shown: Value = serde_json::from_str(&cli.ok(&["session", "show", &id], None).await).unwrap();
    assert_eq!(shown["state"], "stopped");

    // A used ticket is refused with exit code 1 and a clear message.
    let again = cli.run(&["session", "join", started["ws_url"].as_str().unwrap()], Some("")).await;
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("ticket"), "{}", again.stderr);
}

#[tokio::test]
async fn rpc_list_and_call_with_the_demo_cuebot() {
    let mut config = test_config();
    let _cuebot = portico_local::demo::start_cuebot(&mut config).await.unwrap().expect("the demo Cuebot");
    let api = TestApi::start(Arc::new(MemoryTable::new()), config).await;
    let home = std::env::temp_dir().join(unique("portico-cli-home"));
    std::fs::create_dir_all(&home).unwrap();
    let cli = Cli { home: home.clone(), url: api.running.url() };
    let o = cli.run(&["rpc", "list"], None).await;
    assert!(o.code == 1 && o.stderr.contains("HTTP 401"), "{}", o.stderr);

    // A user whose role may call the demo Cuebot's group, set up with the CLI itself.
    let root = json!({"username": "root", "password": "root-password", "admin": true});
    api.req(reqwest::Method::POST, "/admin/users", Some(&api.admin_token())).json(&root).send().await.unwrap();
    cli.ok(&["login", "root", "--password-stdin"], Some("root-password\n")).await;
    cli.ok(&["user", "create", "carol", "--password-stdin"], Some("carol-password\n")).await;
    cli.ok(&["role", "create", "cue"], None).await;
    cli.ok(&["grant", "cue", "opencue", "rpc.call"], None).await;
    cli.ok(&["user", "add-role", "carol", "cue"], None).await;
    cli.ok(&["login", "carol", "--password-stdin"], Some("carol-password\n")).await;

    let listed = cli.ok(&["rpc", "list"], None).await;
    assert!(listed.contains("show.ShowInterface  (group opencue)\n"), "{listed}");
    assert!(
        listed.contains("\n  show.ShowInterface/FindShow  (show.ShowFindShowRequest -> show.ShowFindShowResponse)\n"),
        "{listed}"
    );
    let raw: Value = serde_json::from_str(&cli.ok(&["--json", "rpc", "list"], None).await).unwrap();
    assert!(raw["services"].as_array().unwrap().iter().any(|s| s["name"] == "show.ShowInterface"), "{raw}");

    let out = cli.ok(&["rpc", "call", "show.ShowInterface/FindShow", r#"{"name": "testshow"}"#], None).await;
    assert!(out.starts_with("{\n  \"show\": {\n"), "pretty: {out}");
    let found: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&found["show"]["name"], &found["show"]["showStats"]["createdJobCount"]),
        (&json!("testshow"), &json!("2353643"))
    );
    // The request from stdin; no request is `{}`; a listed path (leading `/`) works too.
    let out = cli.ok(&["rpc", "call", "/show.ShowInterface/FindShow", "-"], Some(r#"{"name": "archive"}"#)).await;
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["show"]["name"], "archive");
    let out = cli.ok(&["rpc", "call", "show.ShowInterface/GetActiveShows"], None).await;
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["shows"]["shows"][0]["name"], "testshow");
    // A misspelt field is ignored by the gateway (its default), and the CLI says which.
    let o =
        cli.run(&["rpc", "call", "show.ShowInterface/FindShow", r#"{"name": "testshow", "nmae": "x"}"#], None).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("warning") && o.stderr.contains("ignored") && o.stderr.contains("nmae"), "{}", o.stderr);

    // The upstream's status: exit 1 with its message and gRPC code.
    let o = cli.run(&["rpc", "call", "show.ShowInterface/FindShow", r#"{"name": "nope"}"#], None).await;
    assert_eq!((o.code, o.stdout.as_str()), (1, ""), "{}", o.stderr);
    assert!(o.stderr.contains("portico: show not found (NOT_FOUND, HTTP 404)"), "{}", o.stderr);
    let o = cli.run(&["rpc", "call", "show.ShowInterface/CreateShow", r#"{"name": "x"}"#], None).await;
    assert!(o.code == 1 && o.stderr.contains("(UNIMPLEMENTED, HTTP 501)"), "{}", o.stderr);

    // Refused locally (exit 2, bad usage), before anything is sent: with no API to reach, the
    // exit code would otherwise be 3.
    let gone = Cli { home: home.clone(), url: "http://127.0.0.1:9".into() };
    let refusals = [
        (vec!["ShowInterface.FindShow"], "is not a method"),
        (vec!["show.ShowInterface"], "is not a method"),
        (vec!["show.ShowInterface/Find Show"], "is not a method"),
        (vec!["show.ShowInterface/FindShow", r#"{"name": "#], "not valid JSON"),
        (vec!["show.ShowInterface/FindShow", r#"["testshow"]"#], "must be a JSON object"),
        (vec!["show.ShowInterface/FindShow", "{}", "{}"], "unexpected argument"),
    ];
    for (args, says) in refusals {
        let args: Vec<&str> = ["rpc", "call"].into_iter().chain(args).collect();
        let o = gone.run(&args, None).await;
        assert_eq!(o.code, 2, "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains(says), "{args:?}: {}", o.stderr);
    }
    let o = gone.run(&["rpc", "call", "show.ShowInterface/FindShow", "-"], Some("not json")).await;
    assert!(o.code == 2 && o.stderr.contains("not valid JSON"), "{}", o.stderr);
    std::fs::remove_dir_all(&home).ok();
}

#[tokio::test]
async fn jobs_from_the_cli_with_the_demo_argo() {
    let mut config = test_config();
    let timing = (std::time::Duration::from_millis(200), std::time::Duration::from_millis(200));
    let (argo, _engine) = portico_local::demo_argo::serve(&mut config, timing).await.unwrap();
    let api = TestApi::start(Arc::new(MemoryTable::new()), config).await;
    let home = std::env::temp_dir().join(unique("portico-cli-home"));
    std::fs::create_dir_all(&home).unwrap();
    let cli = Cli { home: home.clone(), url: api.running.url() };
    let admin = api.admin_token();

    let recipe = home.join("tides");
    std::fs::create_dir_all(&recipe).unwrap();
    let meta = "name: Tides\nworkflow: {type: shell, sh_file: run.sh}\ninput: {params: [{type: url, value: 'https://data.example.org/t.csv'}]}\n";
    std::fs::write(recipe.join("meta.yml"), meta).unwrap();
    std::fs::write(recipe.join("run.sh"), "sort /input_dir/t.csv > /output_dir/t.csv\n").unwrap();
    let out = cli.ok(&["--token", &admin, "job", "submit", recipe.to_str().unwrap(), "--wait"], None).await;
    assert!(out.contains("submitted job") && out.contains("Succeeded"), "{out}");
    let id = out.split_whitespace().nth(2).unwrap().to_owned();
    assert!(cli.ok(&["--token", &admin, "job", "list"], None).await.contains(&format!("{id}\ttides\tSucceeded")));
    assert!(cli.ok(&["--token", &admin, "job", "logs", &id], None).await.contains("step-1 done"));
    let status: Value = serde_json::from_str(&cli.ok(&["--token", &admin, "job", "status", &id], None).await).unwrap();
    assert_eq!(status["phase"], "Succeeded");
    let o = cli.run(&["--token", &admin, "job", "cancel", &id], None).await;
    assert_eq!(o.code, 1, "a finished job cannot be cancelled: {}", o.stderr);
    assert!(o.stderr.contains("already finished"), "{}", o.stderr);

    // A broken recipe is refused on this machine: nothing is sent.
    std::fs::write(recipe.join("meta.yml"), "name: Tides\nworkers: 3\n").unwrap();
    let o = cli.run(&["--token", &admin, "job", "submit", recipe.to_str().unwrap()], None).await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("meta.yml"), "{}", o.stderr);
    assert_eq!(argo.created(), 1);
    // A source the deployment does not allow is the API's refusal.
    let o = cli.run(&["--token", &admin, "job", "submit", "github://someone:recipes@main/x"], None).await;
    assert!(o.code == 1 && o.stderr.contains("not allowed here"), "{}", o.stderr);
    let out = cli.ok(&["--token", &admin, "job", "output", &id], None).await;
    assert!(out.contains("recipes/tides (volume portico-jobs)"), "{out}");

    // A registered template, with its parameters.
    let template = json!({"workflow_template": "gdal-reproject", "description": "Reprojects",
                          "parameters": [{"name": "epsg", "pattern": "[0-9]{4,5}", "required": true}]});
    let r = api.req(reqwest::Method::PUT, "/recipes/reproject", Some(&admin)).json(&template).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(cli.ok(&["--token", &admin, "job", "templates"], None).await.contains("reproject\tReprojects\t(epsg)"));
    let o = cli.run(&["--token", &admin, "job", "submit", "reproject", "--param", "epsg=north"], None).await;
    assert!(o.code == 1 && o.stderr.contains("does not match"), "{}", o.stderr);
    let out = cli.ok(&["--token", &admin, "job", "submit", "reproject", "--param", "epsg=3413", "--wait"], None).await;
    assert!(out.contains("Succeeded"), "{out}");
}

#[tokio::test]
async fn a_desktop_from_the_cli_on_the_demo_cluster() {
    let mut config = test_config();
    let (cluster, _cluster_running) = portico_local::demo_cluster::serve(&mut config).await.unwrap();
    *cluster.ready_after.lock().unwrap() = std::time::Duration::from_millis(300);
    let (_guacamole, _guacamole_running) = portico_local::demo_guacamole::serve(&mut config).await.unwrap();
    let (office, _office_running) = portico_local::demo_user_office::serve(&mut config).await.unwrap();
    let experiments = portico_local::demo_user_office::sample_experiments(41_000);
    office.experiments.lock().unwrap().insert(portico_tests::ADMIN.into(), experiments);
    office.authorized.lock().unwrap().insert(portico_tests::ADMIN.into(), true);
    let api = TestApi::start(Arc::new(MemoryTable::new()), config).await;
    let home = std::env::temp_dir().join(unique("portico-cli-home"));
    std::fs::create_dir_all(&home).unwrap();
    let cli = Cli { home: home.clone(), url: api.running.url() };
    let admin = api.admin_token();
    let environment = json!({"title": "Analysis desktop", "kind": "kubernetes", "image": "facility/xfce:1.4",
                             "protocol": "vnc", "port": 5901, "cpu": 1000, "memory": 2048, "max_lifetime": 3600});
    let r = api.req(reqwest::Method::PUT, "/environments/xfce", Some(&admin)).json(&environment).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert!(
        cli.ok(&["--token", &admin, "desktop", "environments"], None)
            .await
            .contains("xfce\tkubernetes\tAnalysis desktop")
    );

    let out = cli.ok(&["--token", &admin, "desktop", "start", "xfce", "--lifetime", "600", "--wait"], None).await;
    assert!(out.contains("started desktop") && out.contains("ready"), "{out}");
    let id = out.split_whitespace().nth(2).unwrap().to_owned();
    assert!(cli.ok(&["--token", &admin, "desktop", "list"], None).await.contains(&format!("{id}\txfce\tready")));
    assert!(cli.ok(&["--token", &admin, "desktop", "extend", &id, "600"], None).await.contains("ends at"));
    let o = cli.run(&["--token", &admin, "desktop", "extend", &id, "100000"], None).await;
    assert!(o.code == 1 && o.stderr.contains("seconds"), "past the maximum: {}", o.stderr);
    let out = cli.ok(&["--token", &admin, "desktop", "share", &id, "lena"], None).await;
    assert!(out.contains("viewers: lena"), "{out}");
    let lena = api.token("lena");
    let url = cli.ok(&["--token", &lena, "desktop", "open", &id, "--owner", portico_tests::ADMIN], None).await;
    assert!(url.contains("/demo-guacamole/#/client/"), "{url}");
    let o = cli.run(&["--token", &lena, "desktop", "open", &id], None).await;
    assert_eq!(o.code, 1, "not lena's own: {}", o.stderr);
    let url = cli.ok(&["--token", &admin, "desktop", "open", &id], None).await;
    assert!(url.contains("/demo-guacamole/#/client/") && url.contains("?token="), "{url}");
    let out = cli.ok(&["--token", &admin, "desktop", "stop", &id], None).await;
    assert!(out.contains("ended (stopped)"), "{out}");
    let o = cli.run(&["--token", &admin, "desktop", "open", &id], None).await;
    assert_eq!(o.code, 1, "an ended desktop does not open: {}", o.stderr);
    let o = cli.run(&["--token", &admin, "desktop", "start", "nope"], None).await;
    assert!(o.code == 1 && o.stderr.contains("does not exist"), "{}", o.stderr);

    // From an experiment, marked as a favourite first.
    let out = cli.ok(&["--token", &admin, "desktop", "favorite", "2026-0117"], None).await;
    assert!(out.contains("marked"), "{out}");
    let out = cli.ok(&["--token", &admin, "desktop", "experiments"], None).await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("* 2026-0117\tBL22-CLAESS") && lines[1].starts_with("  2026-0042"), "{out}");
    let out = cli.ok(&["--token", &admin, "desktop", "start", "xfce", "--experiment", "2026-0042"], None).await;
    assert!(out.contains("started desktop"), "{out}");
    let pod = cluster.created.lock().unwrap().iter().rev().find(|o| o["kind"] == "Pod").unwrap().clone();
    assert_eq!(pod["spec"]["securityContext"]["runAsUser"], 41_000, "the experiment's uid");
    let o = cli.run(&["--token", &admin, "desktop", "start", "xfce", "--experiment", "2026-0999"], None).await;
    assert!(o.code == 1 && o.stderr.contains("not one of yours"), "{}", o.stderr);
}
