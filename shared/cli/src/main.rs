//! `portico`: the command-line client of Portico's HTTP API. Its commands, options and help
//! are declared once in [`args`] (clap); `portico --help` and `portico COMMAND --help` show
//! them, `portico completions bash|zsh|fish|...` prints a completion script.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use args::{AppCommand, Cli, Command, KeysCommand, RoleCommand, SessionCommand, UserCommand};
use clap::{CommandFactory, Parser};
use portico_core::auth::own::KeyFile;
use serde_json::{Value, json};

mod args;
mod desktop;
mod job;
mod rpc;

const DEFAULT_URL: &str = "http://127.0.0.1:8000";

/// Why a command failed, with its exit code.
enum Failure {
    Usage(String),
    Api { status: u16, code: String, message: String },
    Unreachable(String),
    Local(String),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Unreachable(_) => 3,
            Failure::Api { .. } | Failure::Local(_) => 1,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Usage(m) => write!(f, "{m}\n\n{}", usage()),
            Failure::Api { status, code, message } => write!(f, "{message} ({code}, HTTP {status})"),
            Failure::Unreachable(m) | Failure::Local(m) => f.write_str(m),
        }
    }
}

fn usage() -> String {
    Cli::command().render_usage().to_string()
}

/// The stored login.
#[derive(serde::Serialize, serde::Deserialize)]
struct Login {
    url: String,
    access_token: String,
}

fn login_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("portico").join("login.json"))
}

fn stored_login() -> Option<Login> {
    serde_json::from_str(&std::fs::read_to_string(login_file()?).ok()?).ok()
}

fn store_login(login: &Login) -> Result<PathBuf, Failure> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = login_file().ok_or_else(|| Failure::Local("no HOME or XDG_CONFIG_HOME to keep the login in".into()))?;
    let dir = path.parent().expect("login file has a folder");
    std::fs::create_dir_all(dir).map_err(|e| Failure::Local(format!("{}: {e}", dir.display())))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Failure::Local(format!("{}: {e}", path.display())))?;
    // An existing file keeps its mode on open: make sure it is private.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Failure::Local(format!("{}: {e}", path.display())))?;
    let text = serde_json::to_string(login).expect("login serializes");
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(|e| Failure::Local(format!("{}: {e}", path.display())))?;
    Ok(path)
}

fn read_password_stdin() -> Result<String, Failure> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(|e| Failure::Local(format!("reading the password: {e}")))?;
    let password = text.lines().next().unwrap_or("").to_owned();
    if password.is_empty() {
        return Err(Failure::Usage("--password-stdin read an empty password".into()));
    }
    Ok(password)
}

/// Percent-encodes one path segment or query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Client {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl Client {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::answer(self.send(req).await?).await
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.url));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
        req.send().await.map_err(|e| Failure::Unreachable(format!("cannot reach {}: {e}", self.url)))
    }

    async fn answer(resp: reqwest::Response) -> Result<Value, Failure> {
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body: Value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(json!(text)) };
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let field = |a: &str, b: &str| body[a].as_str().or(body[b].as_str()).unwrap_or("").to_owned();
        let mut message = field("message", "error_description");
        if status == 401 && message.is_empty() {
            message = "not logged in".into();
        }
        // The RPC routes answer in grpc-gateway's shape: a gRPC code number, maybe details.
        let code = match body["code"].as_u64() {
            Some(n) => rpc::code_name(n),
            None => field("code", "error"),
        };
        if let Some(details) = body["details"].as_array().filter(|d| !d.is_empty()) {
            message = format!("{message}; details: {}", Value::Array(details.clone()));
        }
        Err(Failure::Api { status, code, message })
    }
}

/// Prints `value` as JSON, or as `human` says.
fn show(json_out: bool, value: &Value, human: impl FnOnce(&Value) -> String) {
    if json_out {
        println!("{}", serde_json::to_string_pretty(value).expect("JSON prints"));
    } else {
        let text = human(value);
        if !text.is_empty() {
            println!("{text}");
        }
    }
}

/// Prints the JSON at `path` as it is.
async fn show_one(client: &Client, path: &str) -> Result<(), Failure> {
    let value = client.call(reqwest::Method::GET, path, None).await?;
    show(true, &value, |_| String::new());
    Ok(())
}

/// Deletes `path`, the `kind` named `name`, and says so: `{"<done>": name}`, or
/// `<done> <kind> <name>`.
async fn remove(
    client: &Client,
    json_out: bool,
    path: &str,
    done: &str,
    kind: &str,
    name: &str,
) -> Result<(), Failure> {
    client.call(reqwest::Method::DELETE, path, None).await?;
    show(json_out, &json!({ done: name }), |_| format!("{done} {kind} {name}"));
    Ok(())
}

/// Lists `base` (everyone's, with `all`): a line of tab-separated `columns` for each item.
async fn list_columns(client: &Client, json_out: bool, base: &str, all: bool, columns: &[&str]) -> Result<(), Failure> {
    let path = if all { format!("{base}?all=true") } else { base.to_owned() };
    let page = client.call(reqwest::Method::GET, &path, None).await?;
    show(json_out, &page, |p| {
        list(p, |item| columns.iter().map(|c| item[*c].as_str().unwrap_or("")).collect::<Vec<_>>().join("\t"))
    });
    Ok(())
}

fn list(value: &Value, line: impl Fn(&Value) -> String) -> String {
    let items = value["items"].as_array().cloned().unwrap_or_default();
    let mut out: Vec<String> = items.iter().map(line).collect();
    if let Some(next) = value["next"].as_str() {
        out.push(format!("(more: next={next})"));
    }
    out.join("\n")
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let Cli { url, token, json: json_out, command } = cli;
    let stored = stored_login();
    let url = url
        .or_else(|| stored.as_ref().map(|l| l.url.clone()))
        .unwrap_or_else(|| DEFAULT_URL.into())
        .trim_end_matches('/')
        .to_owned();
    let token = token.or_else(|| stored.filter(|l| l.url.trim_end_matches('/') == url).map(|l| l.access_token));
    let client = Client { http: reqwest::Client::new(), url, token };
    use reqwest::Method as M;
    match command {
        Command::Login { username, password_stdin } => {
            let username = match username {
                Some(name) => name,
                None => {
                    std::env::var("PORTICO_USERNAME").map_err(|_| Failure::Usage("login needs a USERNAME".into()))?
                }
            };
            let password = match std::env::var("PORTICO_PASSWORD") {
                Ok(p) if !password_stdin => p,
                _ => read_password_stdin()?,
            };
            let form = format!("grant_type=password&username={}&password={}", enc(&username), enc(&password));
            let resp = client
                .http
                .post(format!("{}/auth/token", client.url))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await
                .map_err(|e| Failure::Unreachable(format!("cannot reach {}: {e}", client.url)))?;
            let body = Client::answer(resp).await?;
            let access_token = body["access_token"].as_str().unwrap_or_default().to_owned();
            let path = store_login(&Login { url: client.url.clone(), access_token })?;
            show(json_out, &json!({"username": username, "expires_in": body["expires_in"]}), |_| {
                format!("logged in as {username} at {} (token kept in {})", client.url, path.display())
            });
        }
        Command::Logout => {
            if let Some(path) = login_file() {
                let _ = std::fs::remove_file(path);
            }
        }
        Command::Whoami => {
            let me = client.call(M::GET, "/auth/me", None).await?;
            show(json_out, &me, |m| {
                format!(
                    "{}{} (roles: {})",
                    m["username"].as_str().unwrap_or("?"),
                    if m["admin"] == true { ", administrator" } else { "" },
                    m["roles"]
                        .as_array()
                        .map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default()
                )
            });
        }
        Command::User(command) => user(&client, json_out, command).await?,
        Command::Role(command) => role(&client, json_out, command).await?,
        Command::Grant(args::Permission { role, group, action }) => {
            let body = json!({"group": group, "action": action});
            let p = client.call(M::POST, &format!("/admin/roles/{}/permissions", enc(&role)), Some(body)).await?;
            show(json_out, &p, |_| format!("granted {action} on group '{group}' to role {role}"));
        }
        Command::Revoke(args::Permission { role, group, action }) => {
            let path = format!("/admin/roles/{}/permissions?group={}&action={}", enc(&role), enc(&group), enc(&action));
            client.call(M::DELETE, &path, None).await?;
            show(json_out, &json!({"revoked": action}), |_| {
                format!("revoked {action} on group '{group}' from role {role}")
            });
        }
        Command::App(command) => app(&client, json_out, command).await?,
        Command::Session(command) => session(&client, json_out, command).await?,
        Command::Rpc(command) => rpc::run(&client, json_out, command).await?,
        Command::Job(command) => job::run(&client, json_out, command).await?,
        Command::Desktop(command) => desktop::run(&client, json_out, command).await?,
        Command::Keys(KeysCommand::Generate) => {
            println!("{}", serde_json::to_string(&KeyFile::generate()).expect("keys print"));
        }
        Command::Keys(KeysCommand::Rotate { file }) => {
            let text = std::fs::read_to_string(&file).map_err(|e| Failure::Local(format!("{file}: {e}")))?;
            let current: KeyFile =
                serde_json::from_str(&text).map_err(|e| Failure::Local(format!("{file}: not a keyring: {e}")))?;
            println!("{}", serde_json::to_string(&current.rotate()).expect("keys print"));
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "portico", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script)
                .map_err(|e| Failure::Local(format!("writing the completion script: {e}")))?;
        }
    }
    Ok(())
}

async fn user(client: &Client, json_out: bool, command: UserCommand) -> Result<(), Failure> {
    use reqwest::Method as M;
    let adding = matches!(command, UserCommand::AddRole { .. });
    match command {
        UserCommand::Create { name, admin, password_stdin } => {
            let mut body = json!({"username": name, "admin": admin});
            if password_stdin {
                body["password"] = json!(read_password_stdin()?);
            }
            let user = client.call(M::POST, "/admin/users", Some(body)).await?;
            show(json_out, &user, |u| format!("created user {}", u["username"].as_str().unwrap_or("?")));
        }
        UserCommand::List => {
            let page = client.call(M::GET, "/admin/users", None).await?;
            show(json_out, &page, |p| {
                list(p, |u| {
                    format!(
                        "{}{}",
                        u["username"].as_str().unwrap_or("?"),
                        if u["admin"] == true { " (admin)" } else { "" }
                    )
                })
            });
        }
        UserCommand::Show { name } => show_one(client, &format!("/admin/users/{}", enc(&name))).await?,
        UserCommand::Delete { name } => {
            remove(client, json_out, &format!("/admin/users/{}", enc(&name)), "deleted", "user", &name).await?;
        }
        UserCommand::Admin { name, admin } => {
            let user = client
                .call(M::PUT, &format!("/admin/users/{}/admin", enc(&name)), Some(json!({"admin": admin})))
                .await?;
            show(json_out, &user, |u| format!("{}: admin {}", name, u["admin"]));
        }
        UserCommand::Password { name, .. } => {
            let body = json!({"password": read_password_stdin()?});
            client.call(M::PUT, &format!("/admin/users/{}/password", enc(&name)), Some(body)).await?;
            show(json_out, &json!({"password_set": name}), |_| format!("password of {name} set"));
        }
        UserCommand::AddRole { name, role } | UserCommand::RemoveRole { name, role } => {
            let method = if adding { M::PUT } else { M::DELETE };
            let path = format!("/admin/users/{}/roles/{}", enc(&name), enc(&role));
            let user = client.call(method, &path, None).await?;
            show(json_out, &user, |u| format!("{name} now holds: {}", u["roles"]));
        }
    }
    Ok(())
}

async fn role(client: &Client, json_out: bool, command: RoleCommand) -> Result<(), Failure> {
    use reqwest::Method as M;
    match command {
        RoleCommand::Create { name, description } => {
            let role =
                client.call(M::POST, "/admin/roles", Some(json!({"name": name, "description": description}))).await?;
            show(json_out, &role, |r| format!("created role {}", r["name"].as_str().unwrap_or("?")));
        }
        RoleCommand::List => {
            let page = client.call(M::GET, "/admin/roles", None).await?;
            show(json_out, &page, |p| list(p, |r| r["name"].as_str().unwrap_or("?").to_owned()));
        }
        RoleCommand::Show { name } => show_one(client, &format!("/admin/roles/{}", enc(&name))).await?,
        RoleCommand::Delete { name } => {
            remove(client, json_out, &format!("/admin/roles/{}", enc(&name)), "deleted", "role", &name).await?;
        }
    }
    Ok(())
}

async fn app(client: &Client, json_out: bool, command: AppCommand) -> Result<(), Failure> {
    use reqwest::Method as M;
    match command {
        AppCommand::Publish { file } => {
            let text = std::fs::read_to_string(&file).map_err(|e| Failure::Local(format!("{file}: {e}")))?;
            let body: Value =
                serde_json::from_str(&text).map_err(|e| Failure::Local(format!("{file}: not JSON: {e}")))?;
            let slug =
                body["slug"].as_str().ok_or_else(|| Failure::Local(format!("{file}: needs a \"slug\"")))?.to_owned();
            let app = client.call(M::PUT, &format!("/apps/{}", enc(&slug)), Some(body)).await?;
            show(json_out, &app, |a| format!("published {} ({})", slug, a["title"].as_str().unwrap_or("")));
        }
        AppCommand::List => {
            let page = client.call(M::GET, "/apps", None).await?;
            show(json_out, &page, |p| {
                list(p, |a| format!("{}\t{}", a["slug"].as_str().unwrap_or("?"), a["title"].as_str().unwrap_or("")))
            });
        }
        AppCommand::Show { slug } => show_one(client, &format!("/apps/{}", enc(&slug))).await?,
        AppCommand::Delete { slug } => {
            remove(client, json_out, &format!("/apps/{}", enc(&slug)), "deleted", "app", &slug).await?;
        }
    }
    Ok(())
}

async fn session(client: &Client, json_out: bool, command: SessionCommand) -> Result<(), Failure> {
    use reqwest::Method as M;
    match command {
        SessionCommand::Start { app } => {
            let started = client.call(M::POST, "/sessions", Some(json!({"app": app}))).await?;
            show(json_out, &started, |s| {
                format!(
                    "session {} started; join within {} s:\n{}",
                    s["session_id"].as_str().unwrap_or("?"),
                    s["expires_in"],
                    s["ws_url"].as_str().unwrap_or("?")
                )
            });
        }
        SessionCommand::List { all } => {
            list_columns(client, json_out, "/sessions", all, &["id", "app", "state", "owner"]).await?;
        }
        SessionCommand::Show { id } => show_one(client, &format!("/sessions/{}", enc(&id))).await?,
        SessionCommand::Stop { id } => {
            remove(client, json_out, &format!("/sessions/{}", enc(&id)), "stopped", "session", &id).await?;
        }
        SessionCommand::Ticket { id } => {
            let fresh = client.call(M::POST, &format!("/sessions/{}/tickets", enc(&id)), None).await?;
            show(json_out, &fresh, |s| s["ws_url"].as_str().unwrap_or("?").to_owned());
        }
        SessionCommand::Join { ws_url } => join(&ws_url).await?,
    }
    Ok(())
}

/// Joins a session's relay as its client: says hello, prints every frame received as one JSON
/// line, and sends each stdin line (JSON, or else a string) as a signal's data. Ends when the
/// session ends, the socket closes, or stdin does.
async fn join(ws_url: &str) -> Result<(), Failure> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.map_err(|e| match e {
        tokio_tungstenite::tungstenite::Error::Http(r) => {
            let status = r.status().as_u16();
            let message = match status {
                409 => "the relay refused the connection: the session has ended or already has a client",
                _ => "the relay refused the connection: the ticket is missing, used or expired",
            };
            Failure::Api { status, code: "ticket_refused".into(), message: message.into() }
        }
        other => Failure::Unreachable(format!("cannot reach the relay: {other}")),
    })?;
    let broken = |e: tokio_tungstenite::tungstenite::Error| Failure::Unreachable(format!("relay connection: {e}"));
    ws.send(Message::text(json!({"type": "hello"}).to_string())).await.map_err(broken)?;
    // stdin is read on a plain thread: a read blocked in tokio's pool would hold the process
    // open after the session ended.
    let (tx, mut lines) = tokio::sync::mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let mut stdin_open = true;
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    println!("{text}");
                    if serde_json::from_str::<Value>(&text).is_ok_and(|v| v["type"] == "session_ended") {
                        return Ok(());
                    }
                }
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(broken(e)),
            },
            line = lines.recv(), if stdin_open => match line {
                Some(line) if !line.trim().is_empty() => {
                    let data = serde_json::from_str::<Value>(&line).unwrap_or(Value::String(line));
                    let signal = json!({"type": "signal", "data": data}).to_string();
                    ws.send(Message::text(signal)).await.map_err(broken)?;
                }
                Some(_) => {}
                None => {
                    stdin_open = false;
                    let _ = ws.close(None).await;
                }
            },
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // Usage errors and --help are clap's: exit code 2 and 0.
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("portico: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
