//! The request path's floor: a bare hyper 1 server, run as a child process like the emulator
//! (this binary with `--serve-floor PORT`), that does only what `GET /apps/{slug}` and
//! `GET /apps` cannot do without: the same ES256 check of the same bearer with
//! `jsonwebtoken` and the same public key (signature and `exp`), then a map lookup (or a page
//! of a `BTreeMap`) answering the same JSON the emulator answered. No route table, no event
//! translation, no store, no authorization, no logging.
//!
//! Portico remembers a verified token for up to a minute, so the floor does too (a map of
//! token to expiry), unless `BENCH_FLOOR_MEMO=0`: then it verifies every request's signature.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use portico_core::auth::own::Keyring;
use portico_core::store::now_epoch;
use serde_json::{Value, json};

use crate::BenchResult;

/// The file with the apps to serve: `{"apps": [{"slug", "view", "etag"}]}`.
pub const DATA_ENV: &str = "BENCH_FLOOR_DATA";
/// `0`: verify every request; anything else: remember verified tokens as Portico does.
pub const MEMO_ENV: &str = "BENCH_FLOOR_MEMO";

/// Portico's defaults: `page_size_default`, `page_size_max`.
const PAGE_DEFAULT: usize = 25;
const PAGE_MAX: usize = 100;

struct Floor {
    key: DecodingKey,
    validation: Validation,
    /// slug -> (the app as the emulator answered it, its `ETag` header as sent).
    apps: BTreeMap<String, (Value, String)>,
    memo: Option<Mutex<HashMap<String, i64>>>,
}

fn respond(status: StatusCode, body: &Value, etag: Option<&str>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(serde_json::to_vec(body).expect("JSON"))));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    if let Some(tag) = etag.and_then(|t| header::HeaderValue::from_str(t).ok()) {
        r.headers_mut().insert(header::ETAG, tag);
    }
    r
}

impl Floor {
    fn authorized<B>(&self, req: &Request<B>) -> bool {
        let bearer = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(token) = bearer.and_then(|v| v.strip_prefix("Bearer ")) else { return false };
        let now = now_epoch();
        if let Some(memo) = &self.memo
            && memo.lock().expect("memo").get(token).is_some_and(|exp| *exp > now)
        {
            return true;
        }
        let Ok(data) = jsonwebtoken::decode::<Value>(token, &self.key, &self.validation) else { return false };
        if let Some(memo) = &self.memo {
            let until = data.claims["exp"].as_i64().unwrap_or(now).min(now + 60);
            let mut memo = memo.lock().expect("memo");
            if memo.len() > 100_000 {
                memo.clear();
            }
            memo.insert(token.to_owned(), until);
        }
        true
    }

    fn answer<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        if !self.authorized(req) {
            let body = json!({"code": "unauthorized", "message": "a valid bearer token is required"});
            return respond(StatusCode::UNAUTHORIZED, &body, None);
        }
        let path = req.uri().path();
        if path == "/apps" {
            let query = req.uri().query().unwrap_or("");
            let param = |name: &str| form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v);
            let limit = param("limit").and_then(|l| l.parse().ok()).unwrap_or(PAGE_DEFAULT).clamp(1, PAGE_MAX);
            let start = match param("next") {
                Some(after) => Bound::Excluded(after.into_owned()),
                None => Bound::Unbounded,
            };
            let mut page: Vec<(&String, &Value)> =
                self.apps.range((start, Bound::Unbounded)).take(limit + 1).map(|(k, (v, _))| (k, v)).collect();
            let next = (page.len() > limit).then(|| {
                page.truncate(limit);
                page.last().map(|(k, _)| k.as_str())
            });
            let items: Vec<&Value> = page.iter().map(|(_, v)| *v).collect();
            return respond(StatusCode::OK, &json!({"items": items, "next": next.flatten()}), None);
        }
        match path.strip_prefix("/apps/").and_then(|slug| self.apps.get(slug)) {
            Some((view, etag)) => respond(StatusCode::OK, view, Some(etag)),
            None => respond(StatusCode::NOT_FOUND, &json!({"code": "not_found", "message": "no such app"}), None),
        }
    }
}

/// Child mode: serve the floor on `port` until killed (keys from `BENCH_KEYS`).
pub async fn serve(port: u16) -> BenchResult {
    let keys = std::env::var("BENCH_KEYS")?;
    let ring = Keyring::from_json(&keys, &crate::config(&keys, None)).map_err(|e| format!("{e:?}"))?;
    let set: JwkSet = serde_json::from_value(serde_json::to_value(ring.jwks())?)?;
    let key = DecodingKey::from_jwk(set.keys.first().ok_or("an empty key set")?)?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_aud = false;
    let data: Value = serde_json::from_str(&std::fs::read_to_string(std::env::var(DATA_ENV)?)?)?;
    let apps = data["apps"]
        .as_array()
        .ok_or("no apps")?
        .iter()
        .filter_map(|a| Some((a["slug"].as_str()?.to_owned(), (a["view"].clone(), a["etag"].as_str()?.to_owned()))))
        .collect();
    let memo = (std::env::var(MEMO_ENV).as_deref() != Ok("0")).then(Mutex::default);
    let floor = Arc::new(Floor { key, validation, apps, memo });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let floor = Arc::clone(&floor);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let floor = Arc::clone(&floor);
                async move { Ok::<_, Infallible>(floor.answer(&req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
