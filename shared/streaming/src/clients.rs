//! The streaming domain's clients, built by the functions that use them (sessions, the relay,
//! the sweeper, apps for the platform's statuses, the console).

use std::sync::Arc;

use portico_core::Services;

use portico_core::config::StreamPlatform;

use crate::RateLimiter;
use crate::bridge::{BridgeQueue, NvcfLauncher};
use crate::bridge_queue::SqsBridges;
use crate::functions::{self, AppStatus, FunctionDirectory, HttpsFunctionDirectory, Statuses, Version};
use crate::launch::{HttpsLauncher, StreamLauncher};
use crate::nvcf::NvcfSignaling;
use crate::push::{ApiGatewayPusher, ConnectionPusher, PushError};

/// What streaming needs beyond the platform's services.
pub struct Streaming {
    /// Starts sessions on the platform; `None` when none is configured (or, on NVCF, no
    /// bridges are: [`Streaming::with_bridges`]).
    pub launcher: Option<Arc<dyn StreamLauncher>>,
    /// The streaming platform's statuses of the apps' functions.
    pub statuses: AppStatuses,
    /// Posts to WebSocket connections (API Gateway's Management API, or the emulator's).
    pub pusher: Arc<dyn ConnectionPusher>,
    /// Per-connection message rates of the relay.
    pub rate_limiter: RateLimiter,
    /// NVCF's signaling, when `nvcf_signaling_endpoint` is set: the streaming portal's own
    /// routes start and end NVCF's sessions with it.
    pub nvcf: Option<NvcfSignaling>,
}

impl Streaming {
    /// The clients `services`' configuration names: the platform's launcher and function list,
    /// and API Gateway's Management API when `relay_management_endpoint` is set on AWS.
    pub fn from_services(services: &Services) -> Streaming {
        let config = &services.config;
        let launcher = match config.platform() {
            StreamPlatform::RelayHost => services.outside(&config.stream_launch_url, HttpsLauncher::new),
            // A session on NVCF needs a bridge to carry it: `with_bridges`.
            StreamPlatform::Nvcf => None,
        };
        let launcher = launcher.map(|launcher| Arc::new(launcher) as Arc<dyn StreamLauncher>);
        let pusher: Arc<dyn ConnectionPusher> = match (&services.aws, &config.relay_management_endpoint) {
            (Some(aws), Some(endpoint)) => Arc::new(ApiGatewayPusher::new(aws, endpoint)),
            _ => Arc::new(NoPusher),
        };
        let statuses = AppStatuses::from_services(services);
        let nvcf = nvcf_signaling(services);
        let streaming = Streaming { launcher, statuses, pusher, rate_limiter: RateLimiter::default(), nvcf };
        // On AWS, NVCF sessions go to the bridge service through its queue.
        match (&services.aws, &config.bridge_queue_url) {
            (Some(aws), Some(queue)) => {
                let bridges = SqsBridges::new(aws_sdk_sqs::Client::new(aws), queue.clone());
                streaming.with_bridges(services, Arc::new(bridges))
            }
            _ => streaming,
        }
    }
}

impl Streaming {
    /// On NVCF (`stream_platform`), sessions start with NVCF's `sign_in` and are carried by
    /// `bridges`; otherwise unchanged.
    pub fn with_bridges(mut self, services: &Services, bridges: Arc<dyn BridgeQueue>) -> Streaming {
        if services.config.platform() == StreamPlatform::Nvcf
            && let Some(signaling) = self.nvcf.clone()
        {
            let max_seconds = services.config.session_ttl;
            self.launcher = Some(Arc::new(NvcfLauncher { signaling, bridges, max_seconds }));
        }
        self
    }
}

/// NVCF's signaling, if `nvcf_signaling_endpoint` is set.
pub fn nvcf_signaling(services: &Services) -> Option<NvcfSignaling> {
    services.outside(&services.config.nvcf_signaling_endpoint, NvcfSignaling::new)
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
pub(crate) struct NoPusher;

#[async_trait::async_trait]
impl ConnectionPusher for NoPusher {
    async fn post(&self, _: &str, _: &str) -> Result<(), PushError> {
        Err(PushError::Failed("relay_management_endpoint is not configured".into()))
    }

    async fn close(&self, _: &str) -> Result<(), PushError> {
        Err(PushError::Failed("relay_management_endpoint is not configured".into()))
    }
}
