//! A stand-in for a facility's user office, speaking the API CalipsoPlus calls (its
//! `API.md`), so `cargo run` lists experiments and starts desktops from them:
//!
//! - `GET /demo-user-office/experiments/<username>/?search=&ordering=&page_size=&page=` with
//!   HTTP Basic credentials → 200 `{"count", "next", "previous", "results": [...]}` (Django
//!   REST framework's page; a page past the last, or an unknown user, 404);
//! - `POST /demo-user-office/authorized` `{"login"}` with the same credentials → 200
//!   `{"result": true|false}`, 404 for an unknown user, 400 without `login`.
//!
//! Any request without the credentials is 401. Tests give it experiments, refusals and
//! failures, and read the requests it received.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use http::{Method, StatusCode};
use portico_core::web::{self, ApiRequest, ApiResponse, RouteGroup};
use portico_core::{Config, Error};
use serde_json::{Value, json};

/// Where the demo user office is mounted on the emulator.
pub const DEMO_USER_OFFICE_PATH: &str = "/demo-user-office";

/// The demo user office's state.
pub struct DemoUserOffice {
    /// The Basic credentials it accepts (`username`, `password`).
    credentials: (String, String),
    /// Each user's experiments, as the user office answers them.
    pub experiments: Mutex<BTreeMap<String, Vec<Value>>>,
    /// Each known user's authorization for desktops without an experiment.
    pub authorized: Mutex<BTreeMap<String, bool>>,
    /// When set, every request answers this status.
    pub fail: Mutex<Option<u16>>,
    /// Requests received: method, path and query.
    pub requests: Mutex<Vec<String>>,
}

/// The experiments the demo lists for `username` (two, for the bootstrap admin of `cargo run`).
pub fn sample_experiments(uid: u32) -> Vec<Value> {
    let session = |n: u32, proposal: &str, start: &str| {
        json!({"sesion_number": n, "start_date": start, "end_date": start, "subject": format!("Beam time {n}"),
               "body": "Shifts on the beamline.", "data_set_path": format!("/2026/{proposal}/{n}")})
    };
    vec![
        json!({"subject": "Crystal structure of a lysozyme mutant", "proposal_id": "2026-0042",
               "body": "Macromolecular crystallography at 100 K.", "beam_line": "BL13-XALOC", "uid": uid, "gid": uid,
               "sessions": [session(1, "2026-0042", "2026-03-02"), session(2, "2026-0042", "2026-05-11")]}),
        json!({"subject": "In-situ XANES of Cu catalysts", "proposal_id": "2026-0117",
               "body": "Operando spectroscopy under flow.", "beam_line": "BL22-CLAESS", "uid": uid + 1, "gid": uid + 1,
               "sessions": [session(1, "2026-0117", "2026-09-20")]}),
    ]
}

impl DemoUserOffice {
    /// A user office accepting `credentials`, with no users.
    pub fn new(credentials: (String, String)) -> Arc<DemoUserOffice> {
        Arc::new(DemoUserOffice {
            credentials,
            experiments: Mutex::new(BTreeMap::new()),
            authorized: Mutex::new(BTreeMap::new()),
            fail: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
        })
    }

    /// The credentials `config` holds at `user_office_secret_id`.
    pub fn credentials_of(config: &Config) -> (String, String) {
        let raw = config.local_secrets.get(&config.user_office_secret_id).cloned().unwrap_or_default();
        let value: Value = serde_json::from_str(&raw).unwrap_or_default();
        let part = |name: &str| value[name].as_str().unwrap_or_default().to_owned();
        (part("username"), part("password"))
    }

    fn signed_in(&self, req: &ApiRequest) -> bool {
        let expected =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.credentials.0, self.credentials.1));
        let given = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        !self.credentials.0.is_empty() && given == Some(format!("Basic {expected}").as_str())
    }

    fn experiments_of(&self, req: &ApiRequest, username: &str) -> ApiResponse {
        let Some(all) = self.experiments.lock().expect("demo user office").get(username).cloned() else {
            return detail(StatusCode::NOT_FOUND, "Not found.");
        };
        let query: BTreeMap<String, String> =
            form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().collect();
        let fields = ["proposal_id", "subject", "body", "beam_line"];
        let text = |e: &Value, f: &str| match &e[f] {
            Value::String(s) => s.to_lowercase(),
            other => other.to_string(),
        };
        let mut found: Vec<Value> = match query.get("search").map(|s| s.to_lowercase()) {
            Some(words) if !words.is_empty() => {
                all.into_iter().filter(|e| fields.iter().any(|f| text(e, f).contains(&words))).collect()
            }
            _ => all,
        };
        if let Some(ordering) = query.get("ordering") {
            let field = ordering.trim_start_matches('-');
            if !fields.contains(&field) {
                return detail(StatusCode::BAD_REQUEST, "Invalid ordering.");
            }
            found.sort_by_key(|e| text(e, field));
            if ordering.starts_with('-') {
                found.reverse();
            }
        }
        let number = |name: &str, default: usize| query.get(name).map_or(Ok(default), |v| v.parse::<usize>());
        let (Ok(size), Ok(page)) = (number("page_size", 10), number("page", 1)) else {
            return detail(StatusCode::NOT_FOUND, "Invalid page.");
        };
        let size = size.clamp(1, 100);
        let count = found.len();
        let pages = count.div_ceil(size).max(1);
        if page == 0 || page > pages {
            return detail(StatusCode::NOT_FOUND, "Invalid page.");
        }
        let results: Vec<Value> = found.into_iter().skip((page - 1) * size).take(size).collect();
        let link = |p: usize| format!("{DEMO_USER_OFFICE_PATH}/experiments/{username}/?page={p}&page_size={size}");
        web::json(
            StatusCode::OK,
            &json!({"count": count, "next": (page < pages).then(|| link(page + 1)),
                    "previous": (page > 1).then(|| link(page - 1)), "results": results}),
        )
    }

    fn authorize(&self, req: &ApiRequest) -> ApiResponse {
        let body: Value = serde_json::from_slice(req.body()).unwrap_or_default();
        let Some(login) = body["login"].as_str() else { return detail(StatusCode::BAD_REQUEST, "login is required") };
        match self.authorized.lock().expect("demo user office").get(login) {
            Some(result) => web::json(StatusCode::OK, &json!({"result": result})),
            None => detail(StatusCode::NOT_FOUND, "Not found."),
        }
    }
}

fn percent_decoded(text: &str) -> String {
    form_urlencoded::parse(format!("u={text}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

fn detail(status: StatusCode, text: &str) -> ApiResponse {
    web::json(status, &json!({"detail": text}))
}

/// The demo user office as a route group of the emulator.
pub struct DemoUserOfficeApi(pub Arc<DemoUserOffice>);

#[async_trait::async_trait]
impl RouteGroup for DemoUserOfficeApi {
    fn name(&self) -> &'static str {
        "demo-user-office"
    }

    fn route_keys(&self) -> Vec<String> {
        vec![format!("ANY {DEMO_USER_OFFICE_PATH}/{{proxy+}}")]
    }

    fn config(&self) -> &Config {
        static CONFIG: std::sync::LazyLock<Config> = std::sync::LazyLock::new(Config::default);
        &CONFIG
    }

    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let office = &self.0;
        let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
        office.requests.lock().expect("demo user office").push(format!("{} {}{query}", req.method(), req.uri().path()));
        if !office.signed_in(req) {
            return Ok(detail(StatusCode::UNAUTHORIZED, "Authentication credentials were not provided."));
        }
        if let Some(status) = *office.fail.lock().expect("demo user office") {
            return Ok(detail(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY), "failing"));
        }
        let segments = web::segments(req);
        Ok(match (req.method(), segments.as_slice()) {
            // The trailing slash is part of the contract (`<username>/`).
            (&Method::GET, ["demo-user-office", "experiments", username]) if req.uri().path().ends_with('/') => {
                let username: String = percent_decoded(username);
                office.experiments_of(req, &username)
            }
            (&Method::POST, ["demo-user-office", "authorized"]) => office.authorize(req),
            _ => detail(StatusCode::NOT_FOUND, "Not found."),
        })
    }
}

/// Points `config` at a demo user office mounted on the emulator at `base`, unless one is
/// configured, with fresh credentials in the local secrets; whether it did.
pub fn configure(config: &mut Config, base: &str) -> bool {
    if config.experiments_url.is_some() || config.facility_authorize_url.is_some() {
        return false;
    }
    config.experiments_url = Some(format!("{base}{DEMO_USER_OFFICE_PATH}/experiments"));
    config.facility_authorize_url = Some(format!("{base}{DEMO_USER_OFFICE_PATH}/authorized"));
    let credentials = json!({"username": "portico", "password": portico_core::store::new_rev()}).to_string();
    config.local_secrets.insert(config.user_office_secret_id.clone(), credentials);
    true
}

/// A demo user office on a port of its own (tests), with fresh credentials; `config` is
/// pointed at it. Dropping the [`crate::Running`] stops it.
pub async fn serve(config: &mut Config) -> std::io::Result<(Arc<DemoUserOffice>, crate::Running)> {
    config.experiments_url = None;
    config.facility_authorize_url = None;
    configure(config, "http://127.0.0.1:0");
    let office = DemoUserOffice::new(DemoUserOffice::credentials_of(config));
    let api = crate::HttpApi::new(vec![Arc::new(DemoUserOfficeApi(Arc::clone(&office)))]);
    let running = crate::start(api, 0).await?;
    config.experiments_url = Some(format!("{}{DEMO_USER_OFFICE_PATH}/experiments", running.url()));
    config.facility_authorize_url = Some(format!("{}{DEMO_USER_OFFICE_PATH}/authorized", running.url()));
    Ok((office, running))
}
