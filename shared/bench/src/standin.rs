//! Services outside Portico that the parts play themselves: one route group answering from a
//! closure, and the stand-in streaming platform of the `relay` and `storage` parts.

use std::sync::{Arc, Mutex};

use http::{Method, StatusCode};
use portico_core::web::{ApiRequest, ApiResponse, RouteGroup, json};
use portico_core::{Config, Error};
use serde_json::Value;

type Answer = Box<dyn Fn(&ApiRequest) -> Result<ApiResponse, Error> + Send + Sync>;

/// An outside service (an OpenID provider, a raw-file host, a streaming platform) answering
/// `route_key` from `answer`, to mount beside Portico's routes or to serve alone.
pub fn stand_in(
    name: &'static str,
    route_key: &'static str,
    answer: impl Fn(&ApiRequest) -> Result<ApiResponse, Error> + Send + Sync + 'static,
) -> Arc<dyn RouteGroup> {
    Arc::new(StandIn { name, route_key, config: Config::default(), answer: Box::new(answer) })
}

struct StandIn {
    name: &'static str,
    route_key: &'static str,
    /// Only CORS reads a group's configuration; the stand-ins are never called cross-origin.
    config: Config,
    answer: Answer,
}

#[async_trait::async_trait]
impl RouteGroup for StandIn {
    fn name(&self) -> &'static str {
        self.name
    }
    fn route_keys(&self) -> Vec<String> {
        vec![self.route_key.into()]
    }
    fn config(&self) -> &Config {
        &self.config
    }
    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        (self.answer)(req)
    }
}

/// The launches a stand-in platform received (their JSON bodies), in order.
pub type Launches = Arc<Mutex<Vec<Value>>>;

/// A streaming platform at `{base}/platform` (the emulator's base URL), with `config` pointed
/// at it: it lists every function `ACTIVE` and records each launch. Unlike the emulator's demo
/// platform, no host joins by itself (the benchmark plays the host with the launch's
/// `relay_url`) and the listing reads no catalog (the `storage` part counts every store call).
pub fn platform(config: &mut Config, base: &str) -> (Arc<dyn RouteGroup>, Launches) {
    config.stream_launch_url = Some(format!("{base}/platform/launch"));
    config.stream_functions_url = Some(format!("{base}/platform/functions"));
    config.local_secrets.insert(config.stream_api_key_secret_id.clone(), "bench-platform-key".into());
    let launches = Launches::default();
    let recorded = Arc::clone(&launches);
    let group = stand_in("platform", "ANY /platform/{proxy+}", move |req| {
        if req.method() == Method::POST {
            recorded.lock().expect("launches").push(serde_json::from_slice(req.body()).unwrap_or(Value::Null));
            return Ok(json(StatusCode::OK, &serde_json::json!({})));
        }
        let functions = serde_json::json!({"functions": [{"id": "f", "versionId": "v", "status": "ACTIVE"}]});
        Ok(json(StatusCode::OK, &functions))
    });
    (group, launches)
}
