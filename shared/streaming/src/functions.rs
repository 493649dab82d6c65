//! App availability: the streaming platform's list of functions and their status (the Omniverse portal sample's
//! NVCF function list), fetched with the server-held API key and cached for
//! `nvcf_cache_ttl` seconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use portico_core::cache::TtlCache;
use portico_core::outbound::Outbound;
use portico_core::secrets::Secrets;
use portico_core::{Config, Error};

/// The status of an app's function version on the streaming platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum AppStatus {
    Active,
    Inactive,
    Deploying,
    Error,
    Unknown,
}

impl AppStatus {
    pub fn parse(s: &str) -> Option<AppStatus> {
        match s {
            "ACTIVE" => Some(AppStatus::Active),
            "INACTIVE" => Some(AppStatus::Inactive),
            "DEPLOYING" => Some(AppStatus::Deploying),
            "ERROR" => Some(AppStatus::Error),
            "UNKNOWN" => Some(AppStatus::Unknown),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AppStatus::Active => "ACTIVE",
            AppStatus::Inactive => "INACTIVE",
            AppStatus::Deploying => "DEPLOYING",
            AppStatus::Error => "ERROR",
            AppStatus::Unknown => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for AppStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How often a function the cached list does not know may force a refresh before the TTL.
pub const UNKNOWN_REFRESH_MIN: Duration = Duration::from_secs(5);

/// Status by (function id, function version id).
pub type Statuses = HashMap<(String, String), AppStatus>;

/// A function version: (function id, function version id).
pub type Version = (String, String);

#[async_trait::async_trait]
pub trait FunctionDirectory: Send + Sync {
    /// Statuses that list each of `wanted` if the platform does. The cached list serves when it
    /// is fresh and knows them all; a version it does not know (an app published since the last
    /// fetch) forces one refresh, at most every [`UNKNOWN_REFRESH_MIN`], before it is `UNKNOWN`.
    async fn statuses_covering(&self, wanted: &[Version]) -> Result<Arc<Statuses>, Error>;
}

/// The status of one app's function version; `UNKNOWN` when the platform does not list it.
pub fn status_of(statuses: &Statuses, function_id: &str, version_id: &str) -> AppStatus {
    statuses.get(&(function_id.to_owned(), version_id.to_owned())).copied().unwrap_or(AppStatus::Unknown)
}

#[derive(Deserialize)]
struct FunctionList {
    functions: Vec<FunctionEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FunctionEntry {
    id: String,
    version_id: String,
    status: String,
}

/// `GET {stream_functions_url}` with `Authorization: Bearer <API key>`, answering
/// `{"functions": [{"id", "versionId", "status"}, ...]}`.
pub struct HttpsFunctionDirectory {
    url: String,
    key_secret_id: String,
    secrets: Arc<dyn Secrets>,
    http: Outbound,
    /// The list, under the one key `()`.
    cache: TtlCache<(), Arc<Statuses>>,
    fetching: tokio::sync::Mutex<()>,
    last_forced: Mutex<Option<Instant>>,
}

impl HttpsFunctionDirectory {
    pub fn new(config: &Config, url: String, secrets: Arc<dyn Secrets>, http: Outbound) -> Self {
        HttpsFunctionDirectory {
            url,
            key_secret_id: config.stream_api_key_secret_id.clone(),
            secrets,
            http,
            cache: TtlCache::new(Duration::from_secs(config.nvcf_cache_ttl), 1),
            fetching: tokio::sync::Mutex::new(()),
            last_forced: Mutex::new(None),
        }
    }

    fn cached(&self) -> Option<(Arc<Statuses>, bool)> {
        self.cache.get_even_stale(&())
    }

    async fn fetch(&self) -> Result<Statuses, Error> {
        let key = self.secrets.get(&self.key_secret_id).await?;
        let resp = self
            .http
            .client()?
            .get(&self.url)
            .bearer_auth(key)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("function list: {}", e.without_url())))?;
        if !resp.status().is_success() {
            return Err(Error::Unavailable(format!("function list answered HTTP {}", resp.status().as_u16())));
        }
        let list: FunctionList =
            resp.json().await.map_err(|e| Error::Unavailable(format!("function list is malformed: {e}")))?;
        Ok(list
            .functions
            .into_iter()
            .map(|f| ((f.id, f.version_id), AppStatus::parse(&f.status).unwrap_or(AppStatus::Unknown)))
            .collect())
    }
}

#[async_trait::async_trait]
impl FunctionDirectory for HttpsFunctionDirectory {
    async fn statuses_covering(&self, wanted: &[Version]) -> Result<Arc<Statuses>, Error> {
        let covers = |s: &Statuses| wanted.iter().all(|v| s.contains_key(v));
        if let Some((statuses, true)) = self.cached()
            && covers(&statuses)
        {
            return Ok(statuses);
        }
        let _one_fetch = self.fetching.lock().await;
        match self.cached() {
            // Fresh and complete (another request refreshed meanwhile).
            Some((statuses, true)) if covers(&statuses) => Ok(statuses),
            // Fresh but missing a version: one forced refresh, rate-limited.
            Some((statuses, true)) => {
                {
                    let mut last = self.last_forced.lock().expect("function list cache");
                    if last.is_some_and(|at| at.elapsed() < UNKNOWN_REFRESH_MIN) {
                        return Ok(statuses);
                    }
                    *last = Some(Instant::now());
                }
                self.refresh().await
            }
            // Stale or never fetched: the fetch is as fresh as it gets, whatever it lists.
            _ => self.refresh().await,
        }
    }
}

impl HttpsFunctionDirectory {
    /// Fetches the list and caches it; called with `fetching` held. A stale list beats none
    /// while the platform is unreachable.
    async fn refresh(&self) -> Result<Arc<Statuses>, Error> {
        match self.fetch().await {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                self.cache.insert((), Arc::clone(&fresh));
                Ok(fresh)
            }
            Err(e) => match self.cached() {
                Some((stale, _)) => {
                    tracing::warn!(error = %e, "function list refresh failed; serving the cached one");
                    Ok(stale)
                }
                None => Err(e),
            },
        }
    }
}
