//! The Kubernetes API server desktops run on, behind a trait: the calls Portico makes (create
//! an object, read a Pod, a Secret or a Pod's events, delete a Pod), each within
//! `desktops_timeout_ms`. No watches: Portico polls on read and from a schedule.

use std::sync::Arc;
use std::time::Duration;

use portico_core::outbound::Outbound;
use portico_core::secrets::Secrets;
use portico_core::{Config, Error};
use serde_json::Value;

/// Why a cluster call failed. Never carries the token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClusterError {
    /// An object of that name exists (the API server's 409).
    #[error("an object of that name exists")]
    AlreadyExists,
    /// Not reachable, too slow, or answering 5xx: try later.
    #[error("the cluster is unavailable: {0}")]
    Unavailable(String),
    /// Another refusal (a deployment problem, not the user's).
    #[error("the cluster refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
}

impl From<ClusterError> for Error {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::AlreadyExists => Error::Conflict(e.to_string()),
            ClusterError::Unavailable(_) => Error::Unavailable(e.to_string()),
            ClusterError::Refused { .. } => {
                Error::Upstream { status: http::StatusCode::BAD_GATEWAY, message: e.to_string() }
            }
        }
    }
}

/// What Portico asks of the cluster, in the desktops' namespace.
#[async_trait::async_trait]
pub trait Cluster: Send + Sync {
    /// Creates `object` (a Pod, Secret, Service or NetworkPolicy); the object as created.
    async fn create(&self, object: &Value) -> Result<Value, ClusterError>;
    /// The Pod `name`, if it exists.
    async fn pod(&self, name: &str) -> Result<Option<Value>, ClusterError>;
    /// The Secret `name`, if it exists (its `data` base64, as the API server answers it).
    async fn secret(&self, name: &str) -> Result<Option<Value>, ClusterError>;
    /// Deletes the Pod `name`, and with it what it owns; absent is fine.
    async fn delete_pod(&self, name: &str) -> Result<(), ClusterError>;
    /// The messages of the Pod's events, oldest first (progress while it starts).
    async fn events(&self, pod: &str) -> Result<Vec<String>, ClusterError>;
}

/// The Kubernetes REST API (`/api/v1/namespaces/{ns}/...`) with a bearer token (an EKS token
/// signed with the function's role, or a service account's from the secrets), over HTTPS
/// trusting the cluster's CA (or the process's outbound client and its roots).
pub struct KubeApi {
    base_url: String,
    namespace: String,
    bearer: Bearer,
    secrets: Arc<dyn Secrets>,
    http: ClusterHttp,
    timeout: Duration,
}

/// Who Portico is to the cluster.
enum Bearer {
    None,
    /// A service account's token, from the secrets.
    Secret(String),
    /// An EKS token (`desktops_eks_cluster`).
    Eks(crate::eks::EksTokens),
}

/// The HTTPS client: the process's, or one trusting only the cluster's CA (built on first use).
enum ClusterHttp {
    Shared(Outbound),
    OwnCa { pem: String, client: std::sync::OnceLock<Result<reqwest::Client, String>> },
}

/// `desktops_cluster_ca` as PEM: PEM text, or its base64 (as EKS's `certificateAuthority.data`).
fn ca_pem(setting: &str) -> String {
    use base64::Engine as _;
    let setting = setting.trim();
    if setting.starts_with("-----BEGIN") {
        return setting.to_owned();
    }
    base64::engine::general_purpose::STANDARD
        .decode(setting.split_whitespace().collect::<String>())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

impl KubeApi {
    /// The API server at `base_url`, for `config`'s namespace, credentials and CA; `aws` signs
    /// EKS tokens.
    pub fn new(
        config: &Config,
        base_url: String,
        secrets: Arc<dyn Secrets>,
        http: Outbound,
        aws: Option<&aws_config::SdkConfig>,
    ) -> Self {
        let bearer = match (&config.desktops_eks_cluster, &config.desktops_cluster_token_secret_id) {
            (Some(cluster), _) => Bearer::Eks(crate::eks::EksTokens::new(cluster.clone(), aws)),
            (None, Some(id)) => Bearer::Secret(id.clone()),
            (None, None) => Bearer::None,
        };
        let http = match &config.desktops_cluster_ca {
            Some(ca) => ClusterHttp::OwnCa { pem: ca_pem(ca), client: std::sync::OnceLock::new() },
            None => ClusterHttp::Shared(http),
        };
        KubeApi {
            base_url: base_url.trim_end_matches('/').to_owned(),
            namespace: config.desktops_namespace.clone(),
            bearer,
            secrets,
            http,
            timeout: Duration::from_millis(config.desktops_timeout_ms),
        }
    }

    /// The collection of `kind`'s objects in the namespace.
    fn collection(&self, kind: &str) -> Option<String> {
        let ns = &self.namespace;
        let core = |plural: &str| format!("{}/api/v1/namespaces/{ns}/{plural}", self.base_url);
        Some(match kind {
            "Pod" => core("pods"),
            "Secret" => core("secrets"),
            "Service" => core("services"),
            "NetworkPolicy" => format!("{}/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies", self.base_url),
            _ => return None,
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ClusterError> {
        let mut req = req.timeout(self.timeout);
        match &self.bearer {
            Bearer::None => {}
            Bearer::Secret(id) => {
                let token =
                    self.secrets.get(id).await.map_err(|e| ClusterError::Unavailable(format!("its token: {e}")))?;
                req = req.bearer_auth(token.trim());
            }
            Bearer::Eks(tokens) => {
                let token = tokens.get().await.map_err(|e| ClusterError::Unavailable(format!("its EKS token: {e}")))?;
                req = req.bearer_auth(token);
            }
        }
        // reqwest's errors name the URL, never the headers: the token stays out.
        req.send().await.map_err(|e| {
            ClusterError::Unavailable(if e.is_timeout() { "no answer in time".into() } else { "cannot connect".into() })
        })
    }

    fn http(&self) -> Result<&reqwest::Client, ClusterError> {
        match &self.http {
            ClusterHttp::Shared(outbound) => outbound.client().map_err(|e| ClusterError::Unavailable(e.to_string())),
            ClusterHttp::OwnCa { pem, client } => client
                .get_or_init(|| {
                    let ca = reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
                    // Only the cluster's CA: no public root vouches for an API server.
                    reqwest::Client::builder().tls_certs_only([ca]).build().map_err(|e| e.to_string())
                })
                .as_ref()
                .map_err(|e| ClusterError::Unavailable(format!("its CA (desktops_cluster_ca): {e}"))),
        }
    }
}

/// A JSON answer, `None` for a 404; the API server's `Status` message for a refusal.
async fn answer(response: reqwest::Response) -> Result<Option<Value>, ClusterError> {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or_default();
    let message = || body["message"].as_str().unwrap_or("").chars().take(300).collect::<String>();
    match status {
        200..=299 => Ok(Some(body)),
        404 => Ok(None),
        409 => Err(ClusterError::AlreadyExists),
        500..=599 => Err(ClusterError::Unavailable(format!("HTTP {status}"))),
        _ => Err(ClusterError::Refused { status, message: message() }),
    }
}

#[async_trait::async_trait]
impl Cluster for KubeApi {
    #[tracing::instrument(name = "kubernetes", skip_all, fields(op = "create"))]
    async fn create(&self, object: &Value) -> Result<Value, ClusterError> {
        let kind = object["kind"].as_str().unwrap_or_default();
        let url = self
            .collection(kind)
            .ok_or_else(|| ClusterError::Refused { status: 400, message: format!("kind {kind}") })?;
        let created = answer(self.send(self.http()?.post(url).json(object)).await?).await?;
        created.ok_or_else(|| ClusterError::Refused { status: 404, message: "the namespace does not exist".into() })
    }

    #[tracing::instrument(name = "kubernetes", skip_all, fields(op = "get pod"))]
    async fn pod(&self, name: &str) -> Result<Option<Value>, ClusterError> {
        let url = format!("{}/{name}", self.collection("Pod").unwrap_or_default());
        answer(self.send(self.http()?.get(url)).await?).await
    }

    #[tracing::instrument(name = "kubernetes", skip_all, fields(op = "get secret"))]
    async fn secret(&self, name: &str) -> Result<Option<Value>, ClusterError> {
        let url = format!("{}/{name}", self.collection("Secret").unwrap_or_default());
        answer(self.send(self.http()?.get(url)).await?).await
    }

    #[tracing::instrument(name = "kubernetes", skip_all, fields(op = "delete pod"))]
    async fn delete_pod(&self, name: &str) -> Result<(), ClusterError> {
        let url = format!("{}/{name}", self.collection("Pod").unwrap_or_default());
        let options =
            serde_json::json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"});
        answer(self.send(self.http()?.delete(url).json(&options)).await?).await.map(|_| ())
    }

    #[tracing::instrument(name = "kubernetes", skip_all, fields(op = "list events"))]
    async fn events(&self, pod: &str) -> Result<Vec<String>, ClusterError> {
        let selector = format!("involvedObject.kind=Pod,involvedObject.name={pod}");
        let query: String =
            form_urlencoded::Serializer::new(String::new()).append_pair("fieldSelector", &selector).finish();
        let url = format!("{}/api/v1/namespaces/{}/events?{query}", self.base_url, self.namespace);
        let list = answer(self.send(self.http()?.get(url)).await?).await?;
        let items = list.as_ref().and_then(|l| l["items"].as_array().cloned()).unwrap_or_default();
        Ok(items.iter().filter_map(|e| e["message"].as_str().map(str::to_owned)).collect())
    }
}
