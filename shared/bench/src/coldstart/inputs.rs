//! What each function process is given: the outside services it reaches (moto included), its
//! environment, and its first and warm events.

use std::time::{Duration, Instant};

use portico_core::secrets::LocalSecrets;
use serde_json::json;

use crate::events;
use crate::functions::Function;

/// What the functions need from outside: a token, the demo Cuebot, the demo Argo.
#[derive(Clone)]
pub(super) struct Outside {
    pub(super) keys: String,
    pub(super) token: String,
    pub(super) rpc_upstreams: String,
    pub(super) argo_url: String,
    /// An AWS endpoint standing in for DynamoDB and Secrets Manager (moto); `None`: the
    /// embedded store and local secrets.
    pub(super) aws: Option<String>,
}

/// The first event each binary gets: its main read route (or what its trigger sends).
pub(super) fn first_event(bin: &str, token: &str) -> Vec<u8> {
    let get = |path: &str, route: &str| events::http("GET", path, route, Some(token), None);
    match bin {
        "auth" => get("/auth/me", "ANY /auth/{proxy+}"),
        "admin" => get("/admin/users", "ANY /admin/{proxy+}"),
        "desktops" => get("/environments", "ANY /environments"),
        "sessions" => get("/sessions", "ANY /sessions"),
        "relay" => events::ws_connect("a-ticket-never-issued"),
        "sweeper" => events::scheduled("portico-sweeper"),
        "reconciler" => events::scheduled("portico-reconciler"),
        "desktops-sweeper" => events::scheduled("portico-desktops-sweeper"),
        "rpc" => events::http(
            "POST",
            "/show.ShowInterface/FindShow",
            "POST /show.ShowInterface/{method}",
            Some(token),
            Some(("application/json", r#"{"name": "testshow"}"#)),
        ),
        "jobs" => events::http(
            "POST",
            "/jobs",
            "ANY /jobs",
            Some(token),
            Some(("application/json", &crate::job().to_string())),
        ),
        "console" => get("/console", "ANY /console"),
        _ => get("/apps", "ANY /apps"),
    }
}

/// What Lambda sets in a function's environment (a provided.al2023 runtime with JSON logs),
/// plus the settings of the SAM template that apply off AWS, on the embedded store.
pub(super) fn environment(f: &Function, runtime_api: &str, outside: &Outside) -> Vec<(String, String)> {
    let name = format!("portico-{}", f.bin);
    let mut env: Vec<(String, String)> = [
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
        ("LANG", "en_US.UTF-8"),
        ("TZ", ":UTC"),
        ("_HANDLER", "bootstrap"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/24/[$LATEST]0123456789abcdef0123456789abcdef"),
        ("AWS_ACCESS_KEY_ID", "ASIAXXXXXXXXXXXXXXXX"),
        ("AWS_SECRET_ACCESS_KEY", "bench-not-a-real-secret-access-key"),
        ("AWS_SESSION_TOKEN", "bench-not-a-real-session-token"),
        ("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR"),
        ("AWS_XRAY_DAEMON_ADDRESS", "169.254.79.129:2000"),
        ("LAMBDA_TASK_ROOT", "/var/task"),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime"),
        ("RUST_LOG", "info"),
        ("PORTICO_STORE", "memory"),
        ("PORTICO_SECRETS", "local"),
        ("PORTICO_BOOTSTRAP_ADMINS", "bench"),
        ("PORTICO_RELAY_URL", "wss://wxyz987654.execute-api.us-east-1.amazonaws.com/ws"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    env.push(("AWS_LAMBDA_RUNTIME_API".into(), runtime_api.into()));
    env.push(("AWS_LAMBDA_FUNCTION_NAME".into(), name.clone()));
    env.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), f.memory_mb.to_string()));
    env.push(("AWS_LAMBDA_LOG_GROUP_NAME".into(), format!("/aws/lambda/{name}")));
    let keys_id = portico_core::Config::default().signing_keys_secret_id;
    env.push((LocalSecrets::env_name(&keys_id), outside.keys.clone()));
    env.push(("PORTICO_RPC_UPSTREAMS".into(), outside.rpc_upstreams.clone()));
    env.push(("PORTICO_ARGO_SERVER_URL".into(), outside.argo_url.clone()));
    if let Some(endpoint) = &outside.aws {
        env.retain(|(k, _)| !k.starts_with("PORTICO_SECRET"));
        env.push(("PORTICO_STORE".into(), "dynamodb".into()));
        env.push(("PORTICO_SECRETS".into(), "secretsmanager".into()));
        env.push(("AWS_ENDPOINT_URL".into(), endpoint.clone()));
    }
    env
}

/// moto's server (installed into `.tools/` by `./scripts/test`) on a free port, with the
/// table and the signing keys' secret made; `None` when it is not installed.
pub(super) async fn moto(keys: &str) -> Result<Option<(tokio::process::Child, String)>, Box<dyn std::error::Error>> {
    let server = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/moto_server");
    if !server.exists() {
        return Ok(None);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = tokio::process::Command::new(server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            return Err("moto did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let config = portico_core::Config::default();
    let table = portico_core::store::dynamo::DynamoTable::new(
        portico_core::store::dynamo::DynamoTable::local_client(&endpoint),
        config.table_name.clone(),
    );
    table.create_if_missing().await.map_err(|e| format!("moto table: {e}"))?;
    // moto reads neither signatures nor credentials, only the service named in the scope.
    let created = reqwest::Client::new()
        .post(&endpoint)
        .header("x-amz-target", "secretsmanager.CreateSecret")
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=local/20261124/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(json!({"Name": config.signing_keys_secret_id, "SecretString": keys}).to_string())
        .send()
        .await?;
    if !created.status().is_success() {
        return Err(format!("moto CreateSecret: {}", created.text().await?).into());
    }
    Ok(Some((child, endpoint)))
}

/// What the warm invocations are, when not the first event again: for `auth`, its main route,
/// a password login (refused: the function's store has no user with a password, and a refused
/// login verifies an argon2id hash as an accepted one does).
/// Each login names another user: repeated failures of one name are refused without hashing
/// once `login_max_failures` is reached.
pub(super) fn warm_events(bin: &str, first: &[u8], count: usize) -> (Vec<Vec<u8>>, &'static str) {
    if bin != "auth" {
        return (vec![first.to_vec(); count], "warm invocation, p50");
    }
    let login = |i: usize| {
        let form = format!("grant_type=password&username=nobody-{i}&password=not-the-password");
        let body = Some(("application/x-www-form-urlencoded", form.as_str()));
        events::http("POST", "/auth/token", "ANY /auth/{proxy+}", None, body)
    };
    ((0..count).map(login).collect(), "warm invocation, refused login (argon2id), p50")
}
