//! `cargo run`: Portico's whole HTTP API on 127.0.0.1, in one process.
//!
//! ```text
//! portico-local [--port 8000] [--store memory|dynamodb] [--endpoint URL] [--table NAME]
//! ```
//! Settings come from `settings.toml` / `PORTICO_*` as for the functions; the flags override
//! them. Secrets are local. If no token secret is configured, one is generated for this run.
//! An admin token and a plain user token are printed and written to `.portico/`.

use std::sync::Arc;

use portico_core::auth::mint_hs256;
use portico_core::config::{SecretsKind, StoreKind};
use portico_core::secrets::{LocalSecrets, Secrets};
use portico_core::store::{Table, dynamo::DynamoTable, memory::MemoryTable, now_epoch};
use portico_core::{Config, Services};
use portico_local::{HttpApi, route_groups, start};
use serde_json::json;

struct Args {
    port: u16,
    store: Option<StoreKind>,
    endpoint: Option<String>,
    table: Option<String>,
}

const USAGE: &str = "usage: portico-local [--port N] [--store memory|dynamodb] [--endpoint URL] [--table NAME]";

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
    let env_secret = std::env::var(LocalSecrets::env_name(&config.token_secret_id)).ok();
    if env_secret.is_none() && !config.local_secrets.contains_key(&config.token_secret_id) {
        let generated = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        config.local_secrets.insert(config.token_secret_id.clone(), generated);
    }
    let table: Arc<dyn Table> = match config.store {
        StoreKind::Memory => Arc::new(MemoryTable::new()),
        StoreKind::Dynamodb => {
            let endpoint = config.dynamodb_endpoint.clone().ok_or("--store dynamodb needs --endpoint URL")?;
            let table = DynamoTable::new(DynamoTable::local_client(&endpoint), config.table_name.clone());
            table.create_if_missing().await.map_err(|e| format!("DynamoDB at {endpoint}: {e}"))?;
            Arc::new(table)
        }
    };
    let secrets = Arc::new(LocalSecrets::new(config.local_secrets.clone()));
    let secret = secrets.get(&config.token_secret_id).await.map_err(|e| format!("{e:?}"))?;
    let store_name = format!("{:?}", config.store).to_lowercase();
    let admin_group = config.admin_group.clone();
    let services = Services::with(config, table, secrets).await.map_err(|e| format!("{e:?}"))?;
    let running = start(HttpApi::new(route_groups(Arc::new(services))), args.port).await?;

    let exp = now_epoch() + 12 * 3600;
    let admin = mint_hs256(secret.as_bytes(), &json!({"sub": "local-admin", "groups": [admin_group], "exp": exp}));
    let user = mint_hs256(secret.as_bytes(), &json!({"sub": "local-user", "groups": [], "exp": exp}));
    std::fs::create_dir_all(".portico")?;
    std::fs::write(".portico/admin-token", &admin)?;
    std::fs::write(".portico/user-token", &user)?;
    println!("Portico local API listening on {} (store: {store_name})", running.url());
    println!("Admin token (12 h; also in .portico/admin-token):\n{admin}");
    println!("User token without admin rights: .portico/user-token");
    println!("Try: curl -H \"Authorization: Bearer $(cat .portico/admin-token)\" {}/apps", running.url());

    tokio::signal::ctrl_c().await?;
    drop(running);
    Ok(())
}
