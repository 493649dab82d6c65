//! Streaming sessions: the REST routes, each declared on its handler, and the WebSocket relay
//! (see `portico_streaming`; API: `$connect?ticket=`, `$default`, `$disconnect`).

use std::sync::Arc;

use axum::extract::State;
use http::StatusCode;
use portico_core::apps::Catalog;
use portico_core::authz::{Action, Principal};
use portico_core::openapi::Paging;
use portico_core::openapi::errors::{
    Error400, Error401, Error403, Error404, Error409, Error413, Error415, Error502, Error503, Error504, ListErrors,
    ReadErrors,
};
use portico_core::web::{
    self, ApiRequest, ApiResponse, PagedQuery, PathParams, Request, Routes, Scope, WebSocketApi, WsEvent,
};
use portico_core::{Error, Services};
use portico_streaming::functions::AppStatus;
use portico_streaming::launch::LaunchRequest;
use portico_streaming::{Relay, Session, SessionState, SessionView, Sessions, Side, Streaming};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod portal;

/// `POST /sessions`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartSession {
    /// The app's slug.
    // `names::SLUG`'s pattern (a derive takes literals only; the suite checks they agree).
    #[schema(example = "usd-validate", pattern = "^[a-z0-9][a-z0-9-]{0,62}$")]
    pub app: String,
    /// `true`: the client speaks NVCF's signaling itself, frames untouched (no envelope): its
    /// `ws_url` is the streaming portal's signaling path (NVCF only).
    #[serde(default)]
    pub raw: bool,
}

/// A client ticket: open `ws_url` (it carries the ticket) within `expires_in` seconds.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionTicket {
    pub session_id: String,
    pub ws_url: String,
    pub ticket: String,
    pub expires_in: u64,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionPage {
    pub items: Vec<SessionView>,
    pub next: Option<String>,
}

/// The sessions route group's state.
pub struct SessionsApi {
    services: Arc<Services>,
    streaming: Arc<Streaming>,
}

impl SessionsApi {
    /// The group, serving `services` with the streaming clients.
    pub fn routes(services: Arc<Services>, streaming: Arc<Streaming>) -> Routes {
        let config = services.config.clone();
        Routes::new("sessions", &config, Arc::new(SessionsApi { services, streaming }), declared())
    }
}

/// Every route of the group, each declared on its handler.
pub fn declared() -> OpenApiRouter<Arc<SessionsApi>> {
    OpenApiRouter::new()
        .routes(routes!(start, list))
        .routes(routes!(get, stop))
        .routes(routes!(ticket))
        .routes(routes!(portal::sign_in, portal::check, portal::sign_out))
}

type Api = State<Arc<SessionsApi>>;
type Answer = Result<ApiResponse, Error>;

/// Start a streaming session
///
/// Needs `session.start` on the app's group and an `ACTIVE` app; reserves one `sessions` unit of quota.
#[utoipa::path(post, path = "/sessions", tag = "sessions",
    request_body(content = StartSession, example = json!({"app": "usd-validate"})),
    responses(
        (status = 201, description = "The client's ticket, with `Location`", body = SessionTicket),
        (status = 400, response = Error400), (status = 401, response = Error401), (status = 403, response = Error403),
        (status = 409, response = Error409), (status = 413, response = Error413), (status = 415, response = Error415),
        (status = 502, response = Error502), (status = 503, response = Error503), (status = 504, response = Error504),
    ),
)]
async fn start(State(api): Api, Request(req): Request) -> Answer {
    api.start(&req).await
}

/// List sessions
///
/// The caller's own; with `all=true` (administrators) every session, filtered by `state`, `app`, `owner`.
#[utoipa::path(get, path = "/sessions", tag = "sessions",
    params(Paging, SessionFilters),
    responses(
        (status = 200, description = "A page of sessions", body = SessionPage),
        ListErrors,
    ),
)]
async fn list(State(api): Api, query: Result<PagedQuery<SessionFilters>, Error>, Request(req): Request) -> Answer {
    api.list(&req, query).await
}

/// `GET /sessions`' own parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SessionFilters {
    /// `true`: every session (administrators).
    all: Option<String>,
    /// With `all`.
    state: Option<String>,
    /// With `all`.
    app: Option<String>,
    /// With `all`.
    owner: Option<String>,
}

/// Get a session
#[utoipa::path(get, path = "/sessions/{id}", tag = "sessions", params(("id" = String, Path)), responses(
    (status = 200, description = "The session", body = SessionView),
        ReadErrors,
    ))]
async fn get(State(api): Api, PathParams(id): PathParams<String>, Request(req): Request) -> Answer {
    let who = api.services.principal(&req).await?;
    Ok(web::json(StatusCode::OK, &api.visible(&who, &id).await?.view()))
}

/// End a session
///
/// Both sides are told and closed; the quota is released.
#[utoipa::path(delete, path = "/sessions/{id}", tag = "sessions", params(("id" = String, Path)), responses(
    (status = 204, description = "Ended"),
        ReadErrors,
    ))]
async fn stop(State(api): Api, PathParams(id): PathParams<String>, Request(req): Request) -> Answer {
    let who = api.services.principal(&req).await?;
    let session = api.visible(&who, &id).await?;
    let reason = if session.owner == who.username { "stopped_by_owner" } else { "stopped_by_admin" };
    api.sessions().end(&id, reason).await?;
    Ok(web::empty(StatusCode::NO_CONTENT))
}

/// A fresh client ticket
///
/// The owner's, to come back to an `idle` session.
#[utoipa::path(post, path = "/sessions/{id}/tickets", tag = "sessions", params(("id" = String, Path)), responses(
    (status = 201, description = "The ticket", body = SessionTicket),
    (status = 401, response = Error401), (status = 403, response = Error403), (status = 404, response = Error404),
    (status = 409, response = Error409), (status = 503, response = Error503),
))]
async fn ticket(State(api): Api, PathParams(id): PathParams<String>, Request(req): Request) -> Answer {
    let who = api.services.principal(&req).await?;
    let session = api.visible(&who, &id).await?;
    if session.owner != who.username {
        return Err(Error::Forbidden("only the owner joins a session".into()));
    }
    // A portal socket whose holder died (its lease passed) holds it no more.
    let lease_passed =
        session.direct.as_ref().is_some_and(|d| d.lease_until.is_none_or(|t| t <= portico_core::store::now_epoch()));
    if session.state == SessionState::Stopped || (session.client_conn.is_some() && !lease_passed) {
        return Err(Error::Conflict("the session has ended or its client is connected".into()));
    }
    let ticket = api.sessions().ticket(&id, Side::Client).await?;
    Ok(web::json(StatusCode::CREATED, &api.client_ticket(&session, ticket)))
}

impl SessionsApi {
    fn sessions(&self) -> Sessions<'_> {
        Sessions {
            table: self.services.table.as_ref(),
            pusher: self.streaming.pusher.as_ref(),
            config: &self.services.config,
            nvcf: self.streaming.nvcf.as_ref(),
        }
    }

    fn ws_url(&self, ticket: &str) -> String {
        format!("{}?ticket={ticket}", self.services.config.relay_url)
    }

    /// What a client needs to join `session` with `ticket`: the relay, or for a session whose
    /// socket goes straight to NVCF, the streaming portal's signaling path.
    fn client_ticket(&self, session: &Session, ticket: String) -> SessionTicket {
        let ws_url = match &session.direct {
            Some(d) => format!(
                "{}/sessions/{}/{}/sign_in?ticket={ticket}",
                self.services.config.portal_socket_base(),
                d.function_id,
                d.function_version_id
            ),
            None => self.ws_url(&ticket),
        };
        SessionTicket {
            session_id: session.id.clone(),
            ws_url,
            ticket,
            expires_in: self.services.config.session_ticket_ttl,
        }
    }

    async fn start(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        who.require_somewhere(Action::SessionStart)?;
        let body: StartSession = web::json_body(req, &self.services.config)?;
        let app = Catalog::new(self.services.table.as_ref())
            .get(&body.app)
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => Error::invalid_field("app", "does not name a published app"),
                other => other,
            })?
            .value;
        who.require(Action::SessionStart, &app.group)?;
        let status = self.streaming.statuses.app_status(&app.function_id, &app.function_version_id).await;
        if status != AppStatus::Active {
            return Err(Error::AppUnavailable(format!("app '{}' cannot be streamed now (status {status})", app.slug)));
        }
        if body.raw {
            return self.start_raw(&who, &app).await;
        }
        let launcher = self
            .streaming
            .launcher
            .as_ref()
            .ok_or_else(|| Error::Unavailable("no streaming platform is configured (stream_launch_url)".into()))?;
        let started = self.sessions().start(&who.username, &app.slug, &app.group, &who.limits).await?;
        let launch = LaunchRequest {
            session_id: started.session.id.clone(),
            function_id: app.function_id.clone(),
            function_version_id: app.function_version_id.clone(),
            relay_url: self.ws_url(&started.host_ticket),
            ticket: started.host_ticket.clone(),
        };
        if let Err(e) = launcher.launch(&launch).await {
            // Given back at once; if the store cannot be reached now, the sweeper ends it at
            // its host deadline.
            if let Err(end) = self.sessions().end(&started.session.id, "launch_failed").await {
                tracing::warn!(session = %started.session.id, error = %end, "ending a session whose launch failed");
            }
            return Err(e);
        }
        Ok(self.created(&started.session, started.client_ticket))
    }

    /// A session whose client speaks NVCF's signaling itself: started as the streaming portal's
    /// routes start one, its ticket opening the portal's signaling path.
    async fn start_raw(&self, who: &Principal, app: &portico_core::apps::App) -> Result<ApiResponse, Error> {
        let nvcf = self.streaming.nvcf.as_ref().ok_or_else(|| {
            Error::invalid_field("raw", "needs NVCF as the streaming platform (nvcf_signaling_endpoint)")
        })?;
        let session = self.sessions().start_direct(&who.username, app, &who.limits, nvcf, "").await?;
        let ticket = match self.sessions().ticket(&session.id, Side::Client).await {
            Ok(ticket) => ticket,
            Err(e) => {
                let _ = self.sessions().end(&session.id, "start_failed").await;
                return Err(e);
            }
        };
        Ok(self.created(&session, ticket))
    }

    /// 201 with the client's ticket and the session's `Location`.
    fn created(&self, session: &Session, ticket: String) -> ApiResponse {
        let mut r = web::json(StatusCode::CREATED, &self.client_ticket(session, ticket));
        if let Ok(location) = format!("/sessions/{}", session.id).parse() {
            r.headers_mut().insert(http::header::LOCATION, location);
        }
        r
    }

    async fn list(
        &self,
        req: &ApiRequest,
        query: Result<PagedQuery<SessionFilters>, Error>,
    ) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        let query = query?;
        let (limit, after) = query.paging(&self.services.config)?;
        let SessionFilters { all, state, app, owner } = &query.filters;
        let filters = [("state", state), ("app", app), ("owner", owner)];
        let (sessions, next) = match web::scope(all.as_deref(), &filters, &who)? {
            Scope::All(filters) => self.sessions().list_all(filters, limit, after).await?,
            Scope::Own => self.sessions().list_owned(&who.username, limit, after).await?,
        };
        let page = SessionPage {
            items: sessions.iter().map(Session::view).collect(),
            next: next.map(|c| c.as_str().to_owned()),
        };
        Ok(web::json(StatusCode::OK, &page))
    }

    /// The session, if `who` may see and manage it (else 404, so ids do not leak).
    async fn visible(&self, who: &Principal, id: &str) -> Result<Session, Error> {
        let (session, _) = self.sessions().get(id).await?;
        if session.owner == who.username || who.may(Action::SessionManage, &session.app_group) {
            Ok(session)
        } else {
            Err(Error::NotFound(format!("session '{id}' does not exist")))
        }
    }
}

/// The WebSocket API's routes.
pub struct RelayApi {
    services: Arc<Services>,
    streaming: Arc<Streaming>,
}

impl RelayApi {
    pub fn new(services: Arc<Services>, streaming: Arc<Streaming>) -> Self {
        RelayApi { services, streaming }
    }

    fn relay(&self) -> Relay<'_> {
        let (s, streaming) = (&self.services, &self.streaming);
        Relay {
            sessions: Sessions {
                table: s.table.as_ref(),
                pusher: streaming.pusher.as_ref(),
                config: &s.config,
                nvcf: streaming.nvcf.as_ref(),
            },
            limiter: &streaming.rate_limiter,
            secrets: s.secrets.as_ref(),
        }
    }

    /// Ends overdue sessions (the `sweeper` function, on a schedule).
    pub async fn sweep(&self) -> Result<usize, Error> {
        self.relay().sessions.sweep().await
    }
}

#[async_trait::async_trait]
impl WebSocketApi for RelayApi {
    async fn handle(&self, event: WsEvent) -> u16 {
        let result = match &event {
            WsEvent::Connect { connection_id, ticket } => self.relay().connect(connection_id, ticket.as_deref()).await,
            WsEvent::Message { connection_id, body } => self.relay().message(connection_id, body).await,
            WsEvent::Disconnect { connection_id } => self.relay().disconnect(connection_id).await,
        };
        match result {
            Ok(()) => 200,
            Err(e) => {
                match &e {
                    Error::Internal(d) | Error::Unavailable(d) => tracing::error!(detail = %d, "relay failure"),
                    other => tracing::info!(reason = %other, "relay refused"),
                }
                e.status().as_u16()
            }
        }
    }
}
