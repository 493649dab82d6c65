//! `cargo run`: Portico's whole HTTP API on 127.0.0.1, in one process.
//!
//! ```text
//! portico-local [--port 8000] [--store memory|dynamodb] [--endpoint URL] [--table NAME]
//! ```
//! Settings come from `settings.toml` / `PORTICO_*` as for the functions; the flags override
//! them. Secrets are local: the signing keyring is kept in `.portico/signing-keys.json`
//! (made on first run). The bootstrap administrator `admin` gets the password in
//! `.portico/admin-password` (made on first run), and an admin token is printed.

use std::path::Path;
use std::sync::Arc;

use portico_core::auth::own::KeyFile;
use portico_core::config::{SecretsKind, StoreKind};
use portico_core::directory::{Directory, User, now_rfc3339};
use portico_core::secrets::LocalSecrets;
use portico_core::store::dynamo::{DynamoTable, Patience};
use portico_core::store::{Table, memory::MemoryTable};
use portico_core::{Config, Error, Services, passwords};
use portico_local::{Platform, WS_PATH, portico_gateway, start_on};

struct Args {
    port: u16,
    store: Option<StoreKind>,
    endpoint: Option<String>,
    table: Option<String>,
}

const USAGE: &str = "usage: portico-local [--port N] [--store memory|dynamodb] [--endpoint URL] [--table NAME]";
const STATE_DIR: &str = ".portico";
const BOOTSTRAP_ADMIN: &str = "admin";

fn parse_args() -> Result<Args, String> {
    let mut args = Args { port: 8000, store: None, endpoint: None, table: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--port" => args.port = value()?.parse().map_err(|_| format!("--port needs a number\n{USAGE}"))?,
            "--store" => {
                args.store = Some(match value()?.as_str() {
                    "memory" => StoreKind::Memory,
                    "dynamodb" => StoreKind::Dynamodb,
                    other => return Err(format!("unknown store '{other}'\n{USAGE}")),
                })
            }
            "--endpoint" => args.endpoint = Some(value()?),
            "--table" => args.table = Some(value()?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    Ok(args)
}

/// Reads a file of local state, or makes it with `make` (owner-only permissions).
fn state_file(name: &str, make: impl FnOnce() -> String) -> std::io::Result<String> {
    let path = Path::new(STATE_DIR).join(name);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(text.trim().to_owned());
    }
    let text = make();
    write_private(&path, &text)?;
    Ok(text)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(STATE_DIR)?;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    std::io::Write::write_all(&mut file, text.as_bytes())
}

/// Whether `endpoint` is an engine on this machine (DynamoDB Local).
fn is_local(endpoint: &str) -> bool {
    let host = endpoint.split("://").nth(1).unwrap_or(endpoint);
    ["127.0.0.1", "localhost", "[::1]"].iter().any(|h| host.starts_with(h))
}

/// Makes sure the bootstrap administrator exists and has the local password.
async fn seed_bootstrap_admin(table: &dyn Table, password: &str) -> Result<(), Error> {
    let directory = Directory::new(table);
    let hash = passwords::hash(password)?;
    let user = User {
        username: BOOTSTRAP_ADMIN.into(),
        admin: true,
        roles: vec![],
        source: "admin".into(),
        created_at: now_rfc3339(),
        has_password: true,
    };
    match directory.create_user(&user, Some(&hash)).await {
        Err(Error::Conflict(_)) => directory
            .update_user(BOOTSTRAP_ADMIN, |_, h| {
                *h = Some(hash.clone());
                Ok(())
            })
            .await
            .map(|_| ()),
        other => other,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args().map_err(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    })?;
    portico_core::lambda::init_tracing();
    let mut config = Config::load()?;
    config.store = args.store.unwrap_or(StoreKind::Memory);
    config.secrets = SecretsKind::Local;
    if let Some(e) = args.endpoint {
        config.dynamodb_endpoint = Some(e);
    }
    if let Some(t) = args.table {
        config.table_name = t;
    }
    if !config.bootstrap_admins.iter().any(|a| a == BOOTSTRAP_ADMIN) {
        config.bootstrap_admins.push(BOOTSTRAP_ADMIN.into());
    }
    let keys_id = config.signing_keys_secret_id.clone();
    if std::env::var(LocalSecrets::env_name(&keys_id)).is_err() && !config.local_secrets.contains_key(&keys_id) {
        let keys = state_file("signing-keys.json", || serde_json::to_string(&KeyFile::generate()).expect("keys"))?;
        config.local_secrets.insert(keys_id, keys);
    }
    let password = match std::env::var("PORTICO_BOOTSTRAP_PASSWORD") {
        Ok(p) => p,
        Err(_) => state_file("admin-password", || uuid::Uuid::new_v4().simple().to_string())?,
    };
    let table: Arc<dyn Table> = match config.store {
        StoreKind::Memory => Arc::new(MemoryTable::new()),
        StoreKind::Dynamodb => {
            let endpoint = config.dynamodb_endpoint.clone();
            // DynamoDB Local on this machine takes dummy credentials; anything else is AWS,
            // reached with the usual credential chain (environment, profile, SSO).
            let patience = Patience::of(&config);
            let client = match endpoint.as_deref() {
                Some(e) if is_local(e) => DynamoTable::local_client_with(e, &patience),
                other => {
                    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                    DynamoTable::client(&aws, other, &patience)
                }
            };
            let table = DynamoTable::new(client, config.table_name.clone()).with_patience(patience);
            let place = endpoint.unwrap_or_else(|| "AWS".into());
            table.create_if_missing().await.map_err(|e| format!("DynamoDB at {place}: {e}"))?;
            Arc::new(table)
        }
    };
    seed_bootstrap_admin(table.as_ref(), &password).await.map_err(|e| format!("{e:?}"))?;
    let store_name = format!("{:?}", config.store).to_lowercase();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let port = listener.local_addr()?.port();
    config.relay_url = format!("ws://127.0.0.1:{port}{WS_PATH}");
    let demo = portico_local::demo::configure(&mut config, &format!("http://127.0.0.1:{port}"));
    // The demo platform's streaming is an NVCF stand-in: sessions run NVCF's path, the bridge
    // included (a local task here, as on AWS it is a service).
    let demo_nvcf = match demo && config.nvcf_signaling_endpoint.is_none() {
        true => {
            let key = config.local_secrets.get(&config.stream_api_key_secret_id).cloned().unwrap_or_default();
            let running = portico_local::demo_nvcf::DemoNvcf::start(&key).await?;
            config.nvcf_signaling_endpoint = Some(running.endpoint.clone());
            Some(running)
        }
        false => None,
    };
    let cuebot = portico_local::demo::start_cuebot(&mut config).await?;
    let demo_argo = portico_local::demo_argo::configure(&mut config, &format!("http://127.0.0.1:{port}"));
    let argo_state = portico_local::demo_argo::DemoArgo::new(config.clone());
    let demo_cluster = portico_local::demo_cluster::configure(&mut config, &format!("http://127.0.0.1:{port}"));
    let cluster_state = portico_local::demo_cluster::DemoCluster::new(&config);
    let demo_guacamole = portico_local::demo_guacamole::configure(&mut config, &format!("http://127.0.0.1:{port}"));
    let guacamole_state = portico_local::demo_guacamole::DemoGuacamole::new(&config);
    let demo_user_office = portico_local::demo_user_office::configure(&mut config, &format!("http://127.0.0.1:{port}"));
    let user_office_state = portico_local::demo_user_office::DemoUserOffice::new(
        portico_local::demo_user_office::DemoUserOffice::credentials_of(&config),
    );
    if demo_user_office {
        let experiments = portico_local::demo_user_office::sample_experiments(config.desktops_uid);
        user_office_state.experiments.lock().expect("fresh").insert(BOOTSTRAP_ADMIN.to_owned(), experiments);
        user_office_state.authorized.lock().expect("fresh").insert(BOOTSTRAP_ADMIN.to_owned(), true);
    }
    if demo_cluster {
        // Nothing is mounted on the demo cluster, but its Pods show what a facility's would.
        let claim = |name: &str| Some(format!(r#"{{"persistentVolumeClaim": {{"claimName": "{name}"}}}}"#));
        config.desktops_datasets_volume = config.desktops_datasets_volume.take().or_else(|| claim("experiments"));
        config.desktops_results_volume = config.desktops_results_volume.take().or_else(|| claim("results"));
    }
    let rpc = portico_local::rpc_gateway(&config).await?;
    let secrets = Arc::new(LocalSecrets::new(config.local_secrets.clone()));
    let services = Services::with(config, table, secrets).await.map_err(|e| format!("{e:?}"))?;
    let mut platform = Platform::new(services);
    // The demo engine's outputs download from a stand-in bucket, as S3 presigned links would.
    let output_store = match demo_argo {
        true => Some(portico_local::demo_store::DemoStore::start().await?),
        false => None,
    };
    platform.jobs.output_links = output_store.as_ref().map(|s| s.links());
    let (mut gateway, shared) = portico_gateway(platform, rpc);
    if demo {
        portico_local::demo::mount(&mut gateway, &shared.services);
    }
    if demo_cluster {
        gateway.http.add(Arc::new(portico_local::demo_cluster::DemoClusterApi(cluster_state)));
    }
    if demo_guacamole {
        gateway.http.add(Arc::new(portico_local::demo_guacamole::DemoGuacamoleApi(guacamole_state)));
    }
    if demo_user_office {
        gateway.http.add(Arc::new(portico_local::demo_user_office::DemoUserOfficeApi(user_office_state)));
    }
    if demo_argo {
        gateway.http.add(Arc::new(portico_local::demo_argo::DemoArgoApi(argo_state)));
    }
    let (admin_token, ttl) = shared.services.keys().issue(BOOTSTRAP_ADMIN);
    let running = start_on(listener, gateway)?;
    // What the scheduled `sweeper` function does on AWS: end overdue sessions.
    let sweeper = shared.relay();
    // And the scheduled `reconciler`: follow unfinished jobs, release their quota.
    let reconciler = shared.jobs();
    // And the `desktops-sweeper`: end desktops past their end or whose Pod died.
    let desktops = shared.desktops();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            if let Err(e) = sweeper.sweep().await {
                tracing::warn!(error = ?e, "session sweep failed");
            }
            if let Err(e) = reconciler.reconcile().await {
                tracing::warn!(error = ?e, "job reconciliation failed");
            }
            if let Err(e) = desktops.sweep().await {
                tracing::warn!(error = ?e, "desktop sweep failed");
            }
        }
    });

    write_private(&Path::new(STATE_DIR).join("admin-token"), &admin_token)?;
    let url = running.url();
    println!(
        "Portico local API listening on {url} (store: {store_name}); WebSocket relay at ws://127.0.0.1:{port}{WS_PATH}"
    );
    if shared.streaming.nvcf.is_some() {
        println!(
            "The streaming portal's own routes: POST/HEAD/DELETE and its signaling WebSocket on \
             {url}/sessions/{{function_id}}/{{function_version_id}}/sign_in (the bridge's socket, served here)."
        );
    }
    if let Some(nvcf) = &demo_nvcf {
        println!(
            "Streaming platform: the built-in NVCF stand-in at {} (every published app ACTIVE; sign_in, then a \
             local bridge holds its signaling socket; its app says SYN first and echoes). Set \
             PORTICO_NVCF_SIGNALING_ENDPOINT to use NVCF.",
            nvcf.endpoint
        );
    } else if let (true, Some(endpoint)) = (demo, &shared.services.config.nvcf_signaling_endpoint) {
        println!(
            "Streaming platform: NVCF at {endpoint}, with the built-in demo's function list (every published app \
             ACTIVE); sessions are carried by local bridges."
        );
    } else if demo {
        println!(
            "Streaming platform: the built-in demo (every published app ACTIVE; its host echoes signals). \
             Set PORTICO_STREAM_LAUNCH_URL to use a real one."
        );
    }
    if let Some(cuebot) = &cuebot {
        println!(
            "RPC upstream: the built-in demo Cuebot at {} (shows, jobs, frames; rpc.call on group 'opencue'). \
             Set PORTICO_RPC_UPSTREAMS to use a real one.",
            cuebot.url()
        );
    }
    if demo_argo {
        println!(
            "Workflow engine: the built-in demo Argo (jobs go Pending, Running, Succeeded over a few seconds; \
             temporary outputs download as zips from a stand-in bucket). \
             Set PORTICO_ARGO_SERVER_URL to use a real one."
        );
    }
    if demo_cluster {
        println!(
            "Desktop cluster: the built-in demo Kubernetes API (desktops' Pods are ready a few seconds after they \
             start; nothing runs). Set PORTICO_DESKTOPS_CLUSTER_URL to use a real cluster."
        );
    }
    if demo_guacamole {
        println!(
            "Desktop viewer: the built-in demo Guacamole at {url}/demo-guacamole/ (reads the logins Portico seals, \
             lists the connections it would open; no guacd). Set PORTICO_GUACAMOLE_URL to use a real one."
        );
    }
    if demo_user_office {
        println!(
            "User office: the built-in demo (two experiments for '{BOOTSTRAP_ADMIN}', who may also start desktops \
             without one). Set PORTICO_EXPERIMENTS_URL and PORTICO_FACILITY_AUTHORIZE_URL to use the facility's."
        );
    }
    println!("Web console: {url}/console (sign in as '{BOOTSTRAP_ADMIN}'); API reference: {url}/docs");
    println!("Bootstrap admin: '{BOOTSTRAP_ADMIN}', password in {STATE_DIR}/admin-password");
    println!("Admin token ({ttl} s; also in {STATE_DIR}/admin-token):\n{admin_token}");
    println!("Try: curl -H \"Authorization: Bearer $(cat {STATE_DIR}/admin-token)\" {url}/auth/me");

    tokio::signal::ctrl_c().await?;
    drop(running);
    Ok(())
}
