//! The workflow engine jobs run on: Argo Workflows' server REST API, behind a small trait. The
//! production client speaks HTTPS with a bearer token read from Secrets Manager (never logged,
//! never returned); the emulator's demo engine speaks the same API.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use portico_core::Config;
use portico_core::outbound::Outbound;
use portico_core::secrets::Secrets;

/// A workflow's state as Argo reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct WorkflowStatus {
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Error`; empty before the controller saw it.
    #[serde(default)]
    pub phase: String,
    #[serde(default)]
    pub message: String,
    /// `done/total` steps.
    #[serde(default)]
    pub progress: String,
    #[serde(default, rename = "startedAt")]
    pub started_at: Option<String>,
    #[serde(default, rename = "finishedAt")]
    pub finished_at: Option<String>,
}

/// A workflow as read back: its labels (whose job it is) and its status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkflowInfo {
    pub labels: serde_json::Map<String, Value>,
    pub status: WorkflowStatus,
}

/// Why a call to the engine failed. Messages name the engine and what happened, never its
/// token or the workflow's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// A workflow of that name exists (Argo's 409).
    #[error("a workflow of that name exists")]
    AlreadyExists,
    #[error("the workflow does not exist in the engine")]
    NotFound,
    /// Not reachable, or answering 5xx: try later.
    #[error("the workflow engine is unavailable: {0}")]
    Unavailable(String),
    #[error("the workflow engine did not answer within {0} ms")]
    Timeout(u64),
    /// A 4xx other than 404/409: the request was refused (a deployment problem, not the user's).
    #[error("the workflow engine refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
}

/// What jobs need of a workflow engine; each call is one request.
#[async_trait::async_trait]
pub trait WorkflowEngine: Send + Sync {
    /// Creates `workflow` (an Argo Workflow object) in the namespace.
    async fn create(&self, workflow: &Value) -> Result<(), EngineError>;
    /// Submits the WorkflowTemplate `template` as a workflow named `name`, with `labels` and
    /// `parameters` (Argo's `submit` of a `WorkflowTemplate`).
    async fn submit_template(
        &self,
        template: &str,
        name: &str,
        labels: &[(String, String)],
        parameters: &[(String, String)],
    ) -> Result<(), EngineError>;
    /// The workflow's labels and status (a field-limited read).
    async fn get(&self, name: &str) -> Result<WorkflowInfo, EngineError>;
    /// Stops the workflow (exit handlers run; Argo's `stop`).
    async fn stop(&self, name: &str) -> Result<(), EngineError>;
    /// The workflow's logs as text, at most `max_bytes` (the newest are kept).
    async fn logs(&self, name: &str, max_bytes: usize) -> Result<String, EngineError>;
    /// Where the publish step stored its `output` artifact (a `temporary` output), if it did.
    async fn output_artifact(&self, name: &str) -> Result<Option<ArtifactStored>, EngineError>;
}

/// An output artifact as Argo reports it: the bucket is absent when the workflow used the
/// cluster's default artifact repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactStored {
    pub bucket: Option<String>,
    pub key: String,
}

/// The publish step's `output` artifact among a workflow's `status.nodes`.
pub fn output_of(nodes: &Value) -> Option<ArtifactStored> {
    let nodes = nodes.as_object()?;
    nodes.values().filter(|n| n["templateName"] == "publish").find_map(|n| {
        let artifact = n["outputs"]["artifacts"].as_array()?.iter().find(|a| a["name"] == "output")?;
        Some(ArtifactStored {
            bucket: artifact["s3"]["bucket"].as_str().map(str::to_owned),
            key: artifact["s3"]["key"].as_str()?.to_owned(),
        })
    })
}

/// Argo Server's REST API (`/api/v1/workflows/{namespace}/...`).
pub struct ArgoServer {
    base_url: String,
    namespace: String,
    token_secret_id: Option<String>,
    secrets: Arc<dyn Secrets>,
    http: Outbound,
    timeout: Duration,
}

/// Fields read on a status refresh: the labels (whose job a workflow is) and the status, little
/// to transfer.
const STATUS_FIELDS: &str =
    "metadata.labels,status.phase,status.message,status.progress,status.startedAt,status.finishedAt";

fn with_query(url: String, pairs: &[(&str, &str)]) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    format!("{url}?{query}")
}

impl ArgoServer {
    pub fn new(config: &Config, base_url: String, secrets: Arc<dyn Secrets>, http: Outbound) -> Self {
        ArgoServer {
            base_url: base_url.trim_end_matches('/').to_owned(),
            namespace: config.argo_namespace.clone(),
            token_secret_id: config.argo_token_secret_id.clone(),
            secrets,
            http,
            timeout: Duration::from_millis(config.argo_timeout_ms),
        }
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/api/v1/workflows/{}{tail}", self.base_url, self.namespace)
    }

    #[tracing::instrument(name = "argo", skip_all)]
    fn http(&self) -> Result<&reqwest::Client, EngineError> {
        self.http.client().map_err(|e| EngineError::Unavailable(e.to_string()))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, EngineError> {
        let mut req = req.timeout(self.timeout);
        if let Some(id) = &self.token_secret_id {
            let token = self.secrets.get(id).await.map_err(|e| EngineError::Unavailable(format!("its token: {e}")))?;
            req = req.bearer_auth(token.trim());
        }
        let response = req.send().await.map_err(|e| {
            if e.is_timeout() {
                EngineError::Timeout(self.timeout.as_millis() as u64)
            } else {
                // reqwest's message names the URL, never headers; the token stays out.
                EngineError::Unavailable(if e.is_connect() {
                    "cannot connect".into()
                } else {
                    "the request failed".into()
                })
            }
        })?;
        let status = response.status().as_u16();
        match status {
            200..=299 => Ok(response),
            404 => Err(EngineError::NotFound),
            409 => Err(EngineError::AlreadyExists),
            500..=599 => Err(EngineError::Unavailable(format!("it answered {status}"))),
            _ => {
                // Argo's error body is `{"code", "message"}`; the message is Argo's own words.
                let body: Value = response.json().await.unwrap_or_default();
                let message = body["message"].as_str().unwrap_or("no message").chars().take(300).collect();
                Err(EngineError::Refused { status, message })
            }
        }
    }
}

#[async_trait::async_trait]
impl WorkflowEngine for ArgoServer {
    async fn create(&self, workflow: &Value) -> Result<(), EngineError> {
        let body = json!({"namespace": self.namespace, "workflow": workflow});
        self.send(self.http()?.post(self.url("")).json(&body)).await.map(|_| ())
    }

    async fn submit_template(
        &self,
        template: &str,
        name: &str,
        labels: &[(String, String)],
        parameters: &[(String, String)],
    ) -> Result<(), EngineError> {
        let pairs = |list: &[(String, String)]| list.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>();
        let body = json!({
            "namespace": self.namespace,
            "resourceKind": "WorkflowTemplate",
            "resourceName": template,
            "submitOptions": {"name": name, "labels": pairs(labels).join(","), "parameters": pairs(parameters)},
        });
        self.send(self.http()?.post(self.url("/submit")).json(&body)).await.map(|_| ())
    }

    async fn get(&self, name: &str) -> Result<WorkflowInfo, EngineError> {
        let url = with_query(self.url(&format!("/{name}")), &[("fields", STATUS_FIELDS)]);
        let response = self.send(self.http()?.get(url)).await?;
        let body: Value = response.json().await.map_err(|_| EngineError::Unavailable("an unreadable answer".into()))?;
        let object = |v: &Value| v.as_object().cloned().unwrap_or_default();
        Ok(WorkflowInfo {
            labels: object(&body["metadata"]["labels"]),
            status: serde_json::from_value(body["status"].clone()).unwrap_or_default(),
        })
    }

    async fn stop(&self, name: &str) -> Result<(), EngineError> {
        let body = json!({"name": name, "namespace": self.namespace});
        self.send(self.http()?.put(self.url(&format!("/{name}/stop"))).json(&body)).await.map(|_| ())
    }

    async fn output_artifact(&self, name: &str) -> Result<Option<ArtifactStored>, EngineError> {
        let url = with_query(self.url(&format!("/{name}")), &[("fields", "status.nodes")]);
        let body: Value = self.send(self.http()?.get(url)).await?.json().await.unwrap_or_default();
        Ok(output_of(&body["status"]["nodes"]))
    }

    async fn logs(&self, name: &str, max_bytes: usize) -> Result<String, EngineError> {
        let query = [("logOptions.container", "main"), ("logOptions.timestamps", "true")];
        let mut response = self.send(self.http()?.get(with_query(self.url(&format!("/{name}/log")), &query))).await?;
        // Argo streams one `{"result": {"content", "podName"}}` object per line, as much as the
        // workflow ever logged: read as it arrives, keeping only the newest `max_bytes`, so a
        // long job's logs never sit whole in memory.
        let mut logs = NewestLines::new(max_bytes);
        while let Some(chunk) =
            response.chunk().await.map_err(|_| EngineError::Unavailable("an unreadable answer".into()))?
        {
            logs.feed(&chunk);
        }
        Ok(logs.finish())
    }
}

/// The newest `max_bytes` of a workflow's log lines (Argo's JSON lines, rendered
/// `pod: content`), fed in chunks: at most a few times `max_bytes` held at once.
struct NewestLines {
    max_bytes: usize,
    out: String,
    line: Vec<u8>,
    /// The line being read is longer than any kept text needs: skipped to its end.
    overlong: bool,
}

impl NewestLines {
    fn new(max_bytes: usize) -> Self {
        NewestLines { max_bytes, out: String::new(), line: Vec::new(), overlong: false }
    }

    /// Longest JSON line read: its content, escaped, is at most about twice its text.
    fn max_line(&self) -> usize {
        self.max_bytes.saturating_mul(2).saturating_add(64 * 1024)
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (piece, ends) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], true),
                None => (bytes, false),
            };
            bytes = &bytes[(piece.len() + usize::from(ends))..];
            if self.line.len() + piece.len() > self.max_line() {
                self.overlong = true;
                self.line.clear();
            } else if !self.overlong {
                self.line.extend_from_slice(piece);
            }
            if ends {
                self.end_line();
            }
        }
    }

    fn end_line(&mut self) {
        if !std::mem::take(&mut self.overlong) {
            let entry: Value = serde_json::from_slice(&self.line).unwrap_or_default();
            if let Some(content) = entry["result"]["content"].as_str() {
                let pod = entry["result"]["podName"].as_str().unwrap_or("");
                self.out.push_str(&format!("{pod}: {content}\n"));
            }
        }
        self.line.clear();
        if self.out.len() > self.max_bytes.saturating_mul(2) {
            self.keep_newest();
        }
    }

    fn keep_newest(&mut self) {
        if self.out.len() > self.max_bytes {
            let mut cut = self.out.len() - self.max_bytes;
            while !self.out.is_char_boundary(cut) {
                cut += 1;
            }
            self.out.replace_range(..cut, "");
        }
    }

    fn finish(mut self) -> String {
        if !self.line.is_empty() {
            self.end_line();
        }
        self.keep_newest();
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(pod: &str, content: &str) -> String {
        json!({"result": {"podName": pod, "content": content}}).to_string() + "\n"
    }

    #[test]
    fn logs_keep_the_newest_bytes_whatever_the_chunks() {
        let text: String = (0..1000).map(|i| line("p", &format!("line {i:04}"))).collect();
        for chunk in [1, 7, 4096, text.len()] {
            let mut logs = NewestLines::new(26);
            text.as_bytes().chunks(chunk).for_each(|c| logs.feed(c));
            assert_eq!(logs.finish(), "p: line 0998\np: line 0999\n", "chunks of {chunk}");
        }
        // A last line without its newline counts; one longer than anything kept is skipped.
        let mut logs = NewestLines::new(10);
        logs.feed(line("p", &"x".repeat(200 * 1024)).as_bytes());
        logs.feed(line("p", "kept").trim_end().as_bytes());
        assert_eq!(logs.finish(), "p: kept\n");
        // Never more than a few times the cap held while reading.
        let mut logs = NewestLines::new(1000);
        for _ in 0..10_000 {
            logs.feed(line("pod", "some output").as_bytes());
            assert!(logs.out.len() <= 2 * 1000 + 64 && logs.line.is_empty());
        }
    }
}
