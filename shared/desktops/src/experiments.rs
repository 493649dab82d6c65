//! Experiments from the facility's user office, as CalipsoPlus calls it (its `API.md`): a
//! user's experiments are `GET {experiments_url}/<username>/` (`search`, `ordering`,
//! `page_size`, `page` passed through) and the facility's word on desktops without an
//! experiment is `POST {facility_authorize_url}` `{"login"}` → `{"result": true|false}`, both
//! with HTTP Basic credentials from Secrets Manager. Answers are reused for
//! `user_office_cache_ttl` seconds.
//!
//! Portico keeps only the user's favourites (`FAVORITES#<user>` / `<proposal_id>`) and never
//! lets a user name an experiment the user office did not list for them.

use std::sync::Arc;
use std::time::Duration;

use portico_core::cache::TtlCache;
use portico_core::outbound::Outbound;
use portico_core::secrets::Secrets;
use portico_core::store::{Condition, Item, Key, Query, Table};
use portico_core::{Config, Error, codes};
use serde::{Deserialize, Deserializer, Serialize};

/// The largest page asked of the user office.
pub const MAX_PAGE_SIZE: u32 = 100;
/// A page's size when the caller names none.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// The favourites read with a listing (more are kept but not marked).
const MAX_FAVORITES: u32 = 1000;
/// What `ordering` may name (and each with `-`, descending), as the user office sorts.
pub const ORDERINGS: [&str; 4] = ["proposal_id", "subject", "body", "beam_line"];

/// Whether `id` can be an experiment's `proposal_id`: 1 to 64 of `[A-Za-z0-9._-]` (what the
/// path and the start's body document).
pub fn is_proposal_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn not_yours(proposal_id: &str) -> Error {
    Error::NotFound(format!(
        "experiment '{}' is not one of yours (the user office does not list it)",
        portico_core::input::shown_key(proposal_id)
    ))
}

/// One of a user's experiments, as the user office answers it.
#[derive(Clone, Debug, Deserialize)]
pub struct Experiment {
    #[serde(deserialize_with = "text_or_number")]
    pub proposal_id: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub beam_line: String,
    /// The facility's uid and gid for the experiment's data.
    #[serde(default, deserialize_with = "optional_id")]
    pub uid: Option<u32>,
    #[serde(default, deserialize_with = "optional_id")]
    pub gid: Option<u32>,
    #[serde(default)]
    pub sessions: Vec<ExperimentSession>,
}

/// One session (beam time) of an experiment.
#[derive(Clone, Debug, Deserialize)]
pub struct ExperimentSession {
    /// (The user office spells it `sesion_number`.)
    #[serde(rename = "sesion_number", alias = "session_number", deserialize_with = "text_or_number")]
    pub number: String,
    #[serde(default)]
    pub start_date: Option<String>,
    #[serde(default)]
    pub end_date: Option<String>,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
    /// Where its data is under the datasets volume: a path, or a JSON volume definition with one.
    #[serde(default)]
    pub data_set_path: Option<serde_json::Value>,
}

/// A page of experiments, as the user office answers it.
#[derive(Clone, Debug, Deserialize)]
pub struct UserOfficePage {
    #[serde(default)]
    pub count: u64,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub results: Vec<Experiment>,
}

fn text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        _ => Err(serde::de::Error::custom("expected a string or a number")),
    }
}

fn optional_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Some(None),
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()).map(Some),
        serde_json::Value::String(s) => s.trim().parse().ok().map(Some),
        _ => None,
    }
    .ok_or_else(|| serde::de::Error::custom("expected a uid or gid"))
}

/// An experiment as Portico answers it (without its storage paths).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExperimentView {
    #[schema(example = "2026-0042")]
    pub proposal_id: String,
    pub subject: String,
    pub body: String,
    pub beam_line: String,
    /// Marked by the caller (`PUT /experiments/{proposal_id}/favorite`).
    pub favorite: bool,
    pub sessions: Vec<ExperimentSessionView>,
}

/// A session of an experiment, as Portico answers it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExperimentSessionView {
    pub number: String,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub subject: String,
    pub body: String,
}

/// A page of the caller's experiments.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExperimentPage {
    /// This page's experiments, the caller's favourites first.
    pub items: Vec<ExperimentView>,
    /// How many experiments match, over every page.
    pub count: u64,
    pub page: u32,
    /// The next page's number, if there is one.
    pub next_page: Option<u32>,
}

/// `GET /experiments`' query: passed through to the user office.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExperimentQuery {
    /// Words searched in the experiments' fields (at most 100 characters, no control characters).
    #[param(max_length = 100, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub search: Option<String>,
    /// `proposal_id`, `subject`, `body` or `beam_line`, `-` first for descending.
    #[param(pattern = "^-?(proposal_id|subject|body|beam_line)$")]
    pub ordering: Option<String>,
    /// The page, from 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 10000)]
    pub page: Option<String>,
    /// Experiments per page (1 to 100, default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub page_size: Option<String>,
}

/// A checked [`ExperimentQuery`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Listing {
    pub search: Option<String>,
    pub ordering: Option<String>,
    pub page: u32,
    pub page_size: u32,
}

fn query_error(message: String) -> Error {
    Error::bad_request(codes::INVALID_QUERY, message)
}

impl ExperimentQuery {
    /// The query checked: each part within its bounds (400 `invalid_query` naming it).
    pub fn listing(self) -> Result<Listing, Error> {
        let number = |name: &str, value: Option<String>, default: u32, max: u32| match value {
            None => Ok(default),
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| query_error(format!("'{name}' must be a whole number from 1 to {max}"))),
        };
        let page = number("page", self.page, 1, 10_000)?;
        let page_size = number("page_size", self.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let search = self.search.filter(|s| !s.trim().is_empty());
        if search.as_ref().is_some_and(|s| s.chars().count() > 100 || s.chars().any(char::is_control)) {
            return Err(query_error("'search' must be at most 100 characters, without control characters".into()));
        }
        if let Some(ordering) = &self.ordering
            && !ORDERINGS.contains(&ordering.strip_prefix('-').unwrap_or(ordering))
        {
            return Err(query_error(format!("'ordering' must be one of {} (or with '-' first)", ORDERINGS.join(", "))));
        }
        Ok(Listing { search, ordering: self.ordering, page, page_size })
    }
}

/// The user office's Basic credentials (Secrets Manager, JSON).
#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// The facility's user office, over HTTPS.
pub struct UserOffice {
    experiments_url: Option<String>,
    authorize_url: Option<String>,
    secret_id: String,
    secrets: Arc<dyn Secrets>,
    http: Outbound,
    timeout: Duration,
    pages: TtlCache<(String, Listing), Arc<UserOfficePage>>,
    authorized: TtlCache<String, bool>,
}

impl UserOffice {
    /// The user office `config` names, reached through `http` with credentials from `secrets`.
    pub fn new(config: &Config, secrets: Arc<dyn Secrets>, http: Outbound) -> UserOffice {
        let ttl = Duration::from_secs(config.user_office_cache_ttl);
        UserOffice {
            experiments_url: config.experiments_url.clone(),
            authorize_url: config.facility_authorize_url.clone(),
            secret_id: config.user_office_secret_id.clone(),
            secrets,
            http,
            timeout: Duration::from_millis(config.desktops_timeout_ms),
            pages: TtlCache::new(ttl, 10_000),
            authorized: TtlCache::new(ttl, 10_000),
        }
    }

    async fn credentials(&self) -> Result<Credentials, Error> {
        let raw = self.secrets.get(&self.secret_id).await?;
        serde_json::from_str(&raw).map_err(|_| {
            Error::Internal(format!("secret '{}' must be JSON {{\"username\", \"password\"}}", self.secret_id))
        })
    }

    /// A page of `username`'s experiments (404 from the user office: none).
    pub async fn experiments(&self, username: &str, listing: &Listing) -> Result<Arc<UserOfficePage>, Error> {
        let base = self.experiments_url.as_deref().ok_or_else(|| {
            Error::Unavailable("no user office is configured for experiments (experiments_url)".into())
        })?;
        let cache_key = (username.to_owned(), listing.clone());
        if let Some(page) = self.pages.get(&cache_key) {
            return Ok(page);
        }
        let user: String = form_urlencoded::byte_serialize(username.as_bytes()).collect();
        let url = {
            // (The serializer is not `Send`: finished before any await.)
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("page", &listing.page.to_string());
            query.append_pair("page_size", &listing.page_size.to_string());
            if let Some(search) = &listing.search {
                query.append_pair("search", search);
            }
            if let Some(ordering) = &listing.ordering {
                query.append_pair("ordering", ordering);
            }
            format!("{}/{user}/?{}", base.trim_end_matches('/'), query.finish())
        };
        let credentials = self.credentials().await?;
        let response = self
            .http
            .client()?
            .get(url)
            .basic_auth(&credentials.username, Some(&credentials.password))
            .timeout(self.timeout)
            .send()
            .await
            .map_err(unreachable)?;
        let page = match response.status().as_u16() {
            200 => response.json::<UserOfficePage>().await.map_err(|e| {
                bad_gateway(format!("the user office's experiments could not be read: {}", e.without_url()))
            })?,
            // An unknown user (or a page past the last, as Django REST framework answers).
            404 => UserOfficePage { count: 0, next: None, results: Vec::new() },
            status => return Err(refused("experiments", status)),
        };
        let page = Arc::new(page);
        self.pages.insert(cache_key, page.clone());
        Ok(page)
    }

    /// `username`'s experiment `proposal_id`, if the user office lists it for them (else 404,
    /// as for an experiment that does not exist).
    pub async fn experiment(&self, username: &str, proposal_id: &str) -> Result<Experiment, Error> {
        if !is_proposal_id(proposal_id) {
            return Err(not_yours(proposal_id));
        }
        let listing =
            Listing { search: Some(proposal_id.to_owned()), ordering: None, page: 1, page_size: MAX_PAGE_SIZE };
        let page = self.experiments(username, &listing).await?;
        page.results.iter().find(|e| e.proposal_id == proposal_id).cloned().ok_or_else(|| not_yours(proposal_id))
    }

    /// Whether the facility lets `username` start desktops without an experiment (an unknown
    /// user: no). `true` when no authorization endpoint is configured.
    pub async fn authorized(&self, username: &str) -> Result<bool, Error> {
        let Some(url) = self.authorize_url.as_deref() else { return Ok(true) };
        if let Some(answer) = self.authorized.get(&username.to_owned()) {
            return Ok(answer);
        }
        let credentials = self.credentials().await?;
        let response = self
            .http
            .client()?
            .post(url)
            .json(&serde_json::json!({"login": username}))
            .basic_auth(&credentials.username, Some(&credentials.password))
            .timeout(self.timeout)
            .send()
            .await
            .map_err(unreachable)?;
        let answer = match response.status().as_u16() {
            200 => {
                let body: serde_json::Value = response.json().await.map_err(|e| {
                    bad_gateway(format!("the facility's authorization could not be read: {}", e.without_url()))
                })?;
                body["result"]
                    .as_bool()
                    .ok_or_else(|| bad_gateway("the facility's authorization has no boolean 'result'".into()))?
            }
            404 => false,
            status => return Err(refused("authorization", status)),
        };
        self.authorized.insert(username.to_owned(), answer);
        Ok(answer)
    }
}

fn bad_gateway(message: String) -> Error {
    Error::Upstream { status: http::StatusCode::BAD_GATEWAY, message }
}

fn unreachable(e: reqwest::Error) -> Error {
    let e = e.without_url();
    if e.is_timeout() {
        Error::Upstream {
            status: http::StatusCode::GATEWAY_TIMEOUT,
            message: format!("the user office timed out: {e}"),
        }
    } else {
        Error::Unavailable(format!("the user office cannot be reached: {e}"))
    }
}

fn refused(what: &str, status: u16) -> Error {
    let why = match status {
        401 | 403 => " (are Portico's user office credentials right?)",
        _ => "",
    };
    bad_gateway(format!("the user office refused the {what} request (HTTP {status}){why}"))
}

impl Experiment {
    /// The experiment as Portico answers it.
    pub fn view(&self, favorite: bool) -> ExperimentView {
        ExperimentView {
            proposal_id: self.proposal_id.clone(),
            subject: self.subject.clone(),
            body: self.body.clone(),
            beam_line: self.beam_line.clone(),
            favorite,
            sessions: self
                .sessions
                .iter()
                .map(|s| ExperimentSessionView {
                    number: s.number.clone(),
                    start_date: s.start_date.clone(),
                    end_date: s.end_date.clone(),
                    subject: s.subject.clone(),
                    body: s.body.clone(),
                })
                .collect(),
        }
    }

    /// Its sessions' datasets as (folder under `/data`, path under the datasets volume). A
    /// path that climbs out (`..`), or holds other than letters, digits, `._-/`, is refused
    /// (502: the user office's data, not the user's).
    pub fn datasets(&self) -> Result<Vec<(String, String)>, Error> {
        let mut found = Vec::new();
        for (at, session) in self.sessions.iter().enumerate() {
            let Some(path) = session.data_set_path.as_ref().and_then(dataset_path) else { continue };
            let clean = path.trim_matches('/');
            let safe = !clean.is_empty()
                && clean.len() <= 255
                && clean.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
                && clean.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
            if !safe {
                return Err(bad_gateway(format!(
                    "the user office gave experiment '{}' a dataset path Portico will not mount",
                    self.proposal_id
                )));
            }
            let number = &session.number;
            let folder = if !number.is_empty()
                && number.len() <= 40
                && number.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !found.iter().any(|(f, _)| f == number)
            {
                number.clone()
            } else {
                format!("session-{}", at + 1)
            };
            found.push((folder, clean.to_owned()));
        }
        Ok(found)
    }
}

/// A session's `data_set_path`: a path, a JSON text holding one, or a JSON volume definition
/// with a `path`.
fn dataset_path(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(inner @ serde_json::Value::Object(_)) => dataset_path(&inner),
            _ => Some(text.clone()).filter(|t| !t.trim().is_empty()),
        },
        serde_json::Value::Object(object) => object.get("path").and_then(|p| p.as_str()).map(str::to_owned),
        _ => None,
    }
}

/// The caller's favourite experiments, kept by Portico.
pub struct Favorites<'a> {
    pub table: &'a dyn Table,
}

fn favorites_pk(username: &str) -> String {
    format!("FAVORITES#{username}")
}

impl Favorites<'_> {
    /// `username`'s favourites (1 query).
    pub async fn of(&self, username: &str) -> Result<Vec<String>, Error> {
        let page = self.table.query(&Query::table(favorites_pk(username), MAX_FAVORITES)).await?;
        Ok(page.items.into_iter().map(|i| i.key.sk).collect())
    }

    /// Marks `proposal_id` (1 write; again: no change).
    pub async fn add(&self, username: &str, proposal_id: &str) -> Result<(), Error> {
        let item = Item::new(Key::new(favorites_pk(username), proposal_id));
        self.table.put(item, Condition::Always).await?;
        Ok(())
    }

    /// Unmarks `proposal_id` (1 delete; unmarked: no change; not a proposal id: 404).
    pub async fn remove(&self, username: &str, proposal_id: &str) -> Result<(), Error> {
        if !is_proposal_id(proposal_id) {
            return Err(not_yours(proposal_id));
        }
        self.table.delete(&Key::new(favorites_pk(username), proposal_id), Condition::Always).await?;
        Ok(())
    }
}

/// A page of `username`'s experiments with their favourites marked and first.
pub async fn page_of(
    office: &UserOffice,
    table: &dyn Table,
    username: &str,
    listing: &Listing,
) -> Result<ExperimentPage, Error> {
    let page = office.experiments(username, listing).await?;
    let favorites = Favorites { table }.of(username).await?;
    let mut items: Vec<ExperimentView> =
        page.results.iter().map(|e| e.view(favorites.contains(&e.proposal_id))).collect();
    items.sort_by_key(|e| !e.favorite);
    let next_page = page.next.as_ref().map(|_| listing.page + 1);
    Ok(ExperimentPage { items, count: page.count, page: listing.page, next_page })
}

#[cfg(test)]
mod tests;
