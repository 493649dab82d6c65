//! The streaming domain's clients, built by the functions that use them (sessions, the relay,
//! the sweeper, apps for the platform's statuses, the console).

use std::sync::Arc;

use portico_core::Services;

use crate::RateLimiter;
use crate::functions::{self, AppStatus, FunctionDirectory, HttpsFunctionDirectory, Statuses, Version};
use crate::launch::{HttpsLauncher, StreamLauncher};
use crate::push::{ApiGatewayPusher, ConnectionPusher, PushError};

/// What streaming needs beyond the platform's services.
pub struct Streaming {
    /// Asks streaming functions to join sessions; `None` when no platform is configured.
    pub launcher: Option<Arc<dyn StreamLauncher>>,
    /// The streaming platform's statuses of the apps' functions.
    pub statuses: AppStatuses,
    /// Posts to WebSocket connections (API Gateway's Management API, or the emulator's).
    pub pusher: Arc<dyn ConnectionPusher>,
    /// Per-connection message rates of the relay.
    pub rate_limiter: RateLimiter,
}

impl Streaming {
    /// The clients `services`' configuration names: the platform's launcher and function list,
    /// and API Gateway's Management API when `relay_management_endpoint` is set on AWS.
    pub fn from_services(services: &Services) -> Streaming {
        let config = &services.config;
        let launcher = services.outside(&config.stream_launch_url, HttpsLauncher::new);
        let launcher = launcher.map(|launcher| Arc::new(launcher) as Arc<dyn StreamLauncher>);
        let pusher: Arc<dyn ConnectionPusher> = match (&services.aws, &config.relay_management_endpoint) {
            (Some(aws), Some(endpoint)) => Arc::new(ApiGatewayPusher::new(aws, endpoint)),
            _ => Arc::new(NoPusher),
        };
        let statuses = AppStatuses::from_services(services);
        Streaming { launcher, statuses, pusher, rate_limiter: RateLimiter::default() }
    }
}

/// The streaming platform's statuses of the apps' functions (its function list, cached), as
/// the catalog shows them and a session's start checks them. Cheap to clone.
#[derive(Clone, Default)]
pub struct AppStatuses(Option<Arc<dyn FunctionDirectory>>);

impl AppStatuses {
    /// The function list `stream_functions_url` names; none (every app `UNKNOWN`) without it.
    pub fn from_services(services: &Services) -> AppStatuses {
        let list = services.outside(&services.config.stream_functions_url, HttpsFunctionDirectory::new);
        AppStatuses(list.map(|list| Arc::new(list) as Arc<dyn FunctionDirectory>))
    }

    /// The platform's statuses of the `wanted` app function versions (`UNKNOWN` for any it does
    /// not list): empty when no function list is configured or it cannot be read. A version the
    /// cached list does not know forces one (rate-limited) refresh, so a freshly published app is
    /// streamable, and listed as such, at once.
    pub async fn app_statuses(&self, wanted: &[Version]) -> Arc<Statuses> {
        match &self.0 {
            Some(directory) => directory.statuses_covering(wanted).await.unwrap_or_else(|e| {
                tracing::warn!(error = ?e, "function list unavailable; app statuses are UNKNOWN");
                Arc::default()
            }),
            None => Arc::default(),
        }
    }

    /// One app's status on the platform (see [`AppStatuses::app_statuses`]).
    pub async fn app_status(&self, function_id: &str, version_id: &str) -> AppStatus {
        let wanted = [(function_id.to_owned(), version_id.to_owned())];
        functions::status_of(&*self.app_statuses(&wanted).await, function_id, version_id)
    }
}

/// The pusher before one is configured: every post fails, and says why.
struct NoPusher;

#[async_trait::async_trait]
impl ConnectionPusher for NoPusher {
    async fn post(&self, _: &str, _: &str) -> Result<(), PushError> {
        Err(PushError::Failed("relay_management_endpoint is not configured".into()))
    }

    async fn close(&self, _: &str) -> Result<(), PushError> {
        Err(PushError::Failed("relay_management_endpoint is not configured".into()))
    }
}
