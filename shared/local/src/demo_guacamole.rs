//! A stand-in for Apache Guacamole's encrypted-JSON authentication, so `cargo run` opens
//! desktops end to end: `POST /demo-guacamole/api/tokens` with the form field `data` reads the
//! blob as `guacamole-auth-json` does (the key from the configuration's secrets; a bad
//! signature, a failed decryption, an expired or a replayed single-use blob are Guacamole's
//! generic "invalid credentials"), and answers an `authToken` as Guacamole does. Its page
//! (`GET /demo-guacamole/`) lists the connections it was given, without their passwords: what
//! a real Guacamole would open. There is no guacd here, so nothing is displayed.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use http::{Method, StatusCode};
use portico_core::web::{self, ApiRequest, ApiResponse, RouteGroup};
use portico_core::{Config, Error};
use portico_desktops::guacamole::{Login, SecretKey};
use serde_json::json;

/// Where the demo Guacamole is mounted on the emulator.
pub const DEMO_GUACAMOLE_PATH: &str = "/demo-guacamole";

/// One login the demo accepted: who, and the connections (protocol, host, port).
#[derive(Clone, Debug)]
pub struct Accepted {
    pub username: String,
    pub login: Login,
    pub token: String,
}

/// The demo Guacamole's state.
pub struct DemoGuacamole {
    key: Option<SecretKey>,
    /// Single-use blobs already used.
    used: Mutex<BTreeSet<String>>,
    /// Logins accepted, newest last (tests read them; the page lists them).
    pub accepted: Mutex<Vec<Accepted>>,
}

impl DemoGuacamole {
    /// The demo, reading blobs with the key `config`'s local secrets hold at
    /// `guacamole_key_secret_id` (none: every blob is refused).
    pub fn new(config: &Config) -> Arc<DemoGuacamole> {
        let key = config.local_secrets.get(&config.guacamole_key_secret_id).and_then(|k| SecretKey::from_hex(k).ok());
        Arc::new(DemoGuacamole { key, used: Mutex::new(BTreeSet::new()), accepted: Mutex::new(Vec::new()) })
    }

    fn tokens(&self, req: &ApiRequest) -> ApiResponse {
        let invalid = || {
            web::json(
                StatusCode::FORBIDDEN,
                &json!({"message": "Permission Denied.", "translatableMessage": {"key": "APP.TEXT_UNTRANSLATED"},
                        "type": "INVALID_CREDENTIALS", "expected": null}),
            )
        };
        let data = form_urlencoded::parse(req.body()).find(|(k, _)| k == "data").map(|(_, v)| v.into_owned());
        let (Some(key), Some(data)) = (&self.key, data) else { return invalid() };
        let Ok(login) = Login::open(key, &data) else { return invalid() };
        let now_ms = portico_core::store::now_epoch().saturating_mul(1000);
        if login.expires <= now_ms as u64 {
            return invalid();
        }
        if login.single_use && !self.used.lock().expect("demo guacamole").insert(data) {
            return invalid();
        }
        let token = portico_core::store::new_rev().to_uppercase();
        let username = login.username.clone();
        let accepted = Accepted { username: username.clone(), login, token: token.clone() };
        self.accepted.lock().expect("demo guacamole").push(accepted);
        web::json(
            StatusCode::OK,
            &json!({"authToken": token, "username": username, "dataSource": "json", "availableDataSources": ["json"]}),
        )
    }

    fn page(&self) -> ApiResponse {
        let accepted = self.accepted.lock().expect("demo guacamole");
        let mut text = String::from(
            "Demo Guacamole (Portico's stand-in: no guacd here, so nothing is displayed).\n\
             Logins accepted, newest last; each would open its connection:\n",
        );
        for a in accepted.iter() {
            for (name, c) in &a.login.connections {
                let param = |p: &str| c.parameters.get(p).cloned().unwrap_or_default();
                text.push_str(&format!(
                    "- {}: {name}, {} to {}:{} (password given: {})\n",
                    a.username,
                    c.protocol,
                    param("hostname"),
                    param("port"),
                    c.parameters.contains_key("password"),
                ));
            }
        }
        let mut r = http::Response::new(text);
        r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
        r
    }
}

/// The demo Guacamole as a route group of the emulator.
pub struct DemoGuacamoleApi(pub Arc<DemoGuacamole>);

#[async_trait::async_trait]
impl RouteGroup for DemoGuacamoleApi {
    fn name(&self) -> &'static str {
        "demo-guacamole"
    }

    fn route_keys(&self) -> Vec<String> {
        vec![format!("ANY {DEMO_GUACAMOLE_PATH}"), format!("ANY {DEMO_GUACAMOLE_PATH}/{{proxy+}}")]
    }

    fn config(&self) -> &Config {
        static CONFIG: std::sync::LazyLock<Config> = std::sync::LazyLock::new(Config::default);
        &CONFIG
    }

    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let segments = web::segments(req);
        Ok(match (req.method(), segments.as_slice()) {
            (&Method::POST, ["demo-guacamole", "api", "tokens"]) => self.0.tokens(req),
            (&Method::GET, ["demo-guacamole"] | ["demo-guacamole", ""]) => self.0.page(),
            _ => web::json(StatusCode::NOT_FOUND, &json!({"message": "Not found.", "type": "NOT_FOUND"})),
        })
    }
}

/// Points `config` at a demo Guacamole mounted on the emulator at `base`, unless one is
/// configured, with a fresh key in the local secrets if none is there; whether it did.
pub fn configure(config: &mut Config, base: &str) -> bool {
    if config.guacamole_url.is_some() {
        return false;
    }
    config.guacamole_url = Some(format!("{base}{DEMO_GUACAMOLE_PATH}"));
    let id = config.guacamole_key_secret_id.clone();
    config.local_secrets.entry(id).or_insert_with(portico_core::store::new_rev);
    true
}

/// A demo Guacamole on a port of its own (tests), reading blobs with the key `config` holds (a
/// fresh one in its local secrets if none is there); `config` is pointed at it. Dropping the
/// [`crate::Running`] stops it.
pub async fn serve(config: &mut Config) -> std::io::Result<(Arc<DemoGuacamole>, crate::Running)> {
    let id = config.guacamole_key_secret_id.clone();
    config.local_secrets.entry(id).or_insert_with(portico_core::store::new_rev);
    let guacamole = DemoGuacamole::new(config);
    let api = crate::HttpApi::new(vec![Arc::new(DemoGuacamoleApi(Arc::clone(&guacamole)))]);
    let running = crate::start(api, 0).await?;
    config.guacamole_url = Some(format!("{}{DEMO_GUACAMOLE_PATH}", running.url()));
    Ok((guacamole, running))
}
