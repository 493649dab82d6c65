//! Sessions as stored and as clients see them, their states, and the two sides they pair.

use serde::{Deserialize, Serialize};

use portico_core::directory::rfc3339;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Client,
    Host,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Host => "host",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Side> {
        match s {
            "client" => Some(Side::Client),
            "host" => Some(Side::Host),
            _ => None,
        }
    }

    pub(super) fn other(self) -> Side {
        match self {
            Side::Client => Side::Host,
            Side::Host => Side::Client,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    Connecting,
    Active,
    Idle,
    Stopped,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Connecting => "connecting",
            SessionState::Active => "active",
            SessionState::Idle => "idle",
            SessionState::Stopped => "stopped",
        }
    }
}

/// A session as clients see it (`GET /sessions/{id}`, listings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: String,
    pub owner: String,
    pub app: String,
    pub state: SessionState,
    pub created_at: String,
    pub ends_at: String,
    pub client_connected: bool,
    pub host_connected: bool,
    pub ended_reason: Option<String>,
}

/// A session as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub owner: String,
    pub app: String,
    pub app_group: String,
    pub state: SessionState,
    /// Epoch seconds.
    pub created_at: i64,
    /// The session ends by then at the latest (`session_ttl`).
    pub ends_at: i64,
    /// The host must have joined by then (`session_host_timeout`).
    pub host_deadline: i64,
    pub idle_since: Option<i64>,
    pub client_conn: Option<String>,
    pub host_conn: Option<String>,
    pub ended_reason: Option<String>,
    /// Its host may leave and come back (a bridge said so in its hello): a host whose socket
    /// goes without a `leave` is waited for until `host_deadline`, another bridge taking the
    /// session up, instead of ending it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_resumable: bool,
    /// Set for a session of the streaming portal's own routes: its client's socket goes
    /// straight to NVCF's signaling, with no relay and no host side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct: Option<DirectStream>,
}

/// NVCF's side of a session started on the streaming portal's own routes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectStream {
    /// NVCF's session (`nvcf-request-id`); the session's own id is derived from it
    /// ([`direct_session_id`]).
    pub request_id: String,
    pub function_id: String,
    pub function_version_id: String,
    /// What the app's stream needs of the user when the socket opens (the app's setting at
    /// the start).
    #[serde(default)]
    pub authentication: portico_core::apps::AuthenticationType,
    /// While `active`: until when the socket holding the session is known alive. A holder that
    /// died stops renewing it, and the session counts as idle from then.
    #[serde(default)]
    pub lease_until: Option<i64>,
}

/// The session id of NVCF's session `request_id`: one read from the portal's cookie to the
/// session, with no index to keep. 32 hex digits, as every session id.
pub fn direct_session_id(request_id: &str) -> String {
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, format!("nvcf-request-id\0{request_id}").as_bytes());
    digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

impl Session {
    /// What clients see (connection ids stay inside).
    pub fn view(&self) -> SessionView {
        SessionView {
            id: self.id.clone(),
            owner: self.owner.clone(),
            app: self.app.clone(),
            state: self.state,
            created_at: rfc3339(self.created_at),
            ends_at: rfc3339(self.ends_at),
            client_connected: self.client_conn.is_some(),
            host_connected: self.host_conn.is_some(),
            ended_reason: self.ended_reason.clone(),
        }
    }

    pub(super) fn conn(&self, side: Side) -> Option<&String> {
        match side {
            Side::Client => self.client_conn.as_ref(),
            Side::Host => self.host_conn.as_ref(),
        }
    }

    pub(super) fn set_conn(&mut self, side: Side, conn: Option<String>) {
        match side {
            Side::Client => self.client_conn = conn,
            Side::Host => self.host_conn = conn,
        }
    }
}
