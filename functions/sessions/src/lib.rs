//! Streaming sessions: the REST routes and the WebSocket relay (see `portico_core::relay`).
//!
//! | route | who may call | answer |
//! |-------|--------------|--------|
//! | `POST /sessions` `{"app": slug}` | `session.start` on the app's group | 201 `{"session_id", "ws_url", "ticket", "expires_in"}` |
//! | `GET /sessions` (`limit`, `next`) | any valid bearer | the caller's sessions |
//! | `GET /sessions?all=true` (`state`, `app`, `owner`) | admins | every session |
//! | `GET /sessions/{id}` | the owner, `session.manage` on the app's group, admins | the session |
//! | `DELETE /sessions/{id}` | the owner, `session.manage` on the app's group, admins | 204: ended, both sides closed, quota released |
//! | `POST /sessions/{id}/tickets` | the owner | 201 a fresh client ticket (to come back to an idle session) |
//!
//! WebSocket API (`relay` function): `$connect?ticket=`, `$default`, `$disconnect`.

use std::sync::Arc;

use http::{Method, StatusCode};
use portico_core::apps::Catalog;
use portico_core::authz::{Action, Principal};
use portico_core::relay::functions::AppStatus;
use portico_core::relay::launch::LaunchRequest;
use portico_core::relay::{Relay, Session, SessionState, Sessions, Side};
use portico_core::store::Cursor;
use portico_core::web::{self, ApiRequest, ApiResponse, RouteGroup, WebSocketApi, WsEvent};
use portico_core::{Config, Error, Services, codes};
use serde::Deserialize;
use serde_json::json;

pub struct SessionsApi {
    services: Arc<Services>,
}

impl SessionsApi {
    pub fn new(services: Arc<Services>) -> Self {
        SessionsApi { services }
    }
}

const LIST_START: &[Method] = &[Method::GET, Method::POST];
const GET_DELETE: &[Method] = &[Method::GET, Method::DELETE];
const POST: &[Method] = &[Method::POST];

#[async_trait::async_trait]
impl RouteGroup for SessionsApi {
    fn name(&self) -> &'static str {
        "sessions"
    }

    fn route_keys(&self) -> Vec<String> {
        ["ANY /sessions", "ANY /sessions/{proxy+}"].map(String::from).into()
    }

    fn config(&self) -> &Config {
        &self.services.config
    }

    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        match (req.method(), web::segments(req).as_slice()) {
            (&Method::POST, ["sessions"]) => self.start(req).await,
            (&Method::GET, ["sessions"]) => self.list(req).await,
            (&Method::GET, ["sessions", id]) => self.get(req, id).await,
            (&Method::DELETE, ["sessions", id]) => self.stop(req, id).await,
            (&Method::POST, ["sessions", id, "tickets"]) => self.ticket(req, id).await,
            (_, ["sessions"]) => Err(web::method_not_allowed(req, LIST_START)),
            (_, ["sessions", _]) => Err(web::method_not_allowed(req, GET_DELETE)),
            (_, ["sessions", _, "tickets"]) => Err(web::method_not_allowed(req, POST)),
            _ => Err(web::no_route(req)),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    app: String,
}

impl SessionsApi {
    fn sessions(&self) -> Sessions<'_> {
        Sessions {
            table: self.services.table.as_ref(),
            pusher: self.services.pusher.as_ref(),
            config: &self.services.config,
        }
    }

    fn ws_url(&self, ticket: &str) -> String {
        format!("{}?ticket={ticket}", self.services.config.relay_url)
    }

    async fn start(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        who.require_somewhere(Action::SessionStart)?;
        let body: StartBody = web::json_body(req, &self.services.config)?;
        let app = Catalog::new(self.services.table.as_ref())
            .get(&body.app)
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => Error::invalid_field("app", "does not name a published app"),
                other => other,
            })?
            .value;
        who.require(Action::SessionStart, &app.group)?;
        let status = self.services.app_status(&app.function_id, &app.function_version_id).await;
        if status != AppStatus::Active {
            return Err(Error::AppUnavailable(format!("app '{}' cannot be streamed now (status {status})", app.slug)));
        }
        let launcher = self
            .services
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
        let ticket = started.client_ticket;
        let mut r = web::json(
            StatusCode::CREATED,
            &json!({
                "session_id": started.session.id,
                "ws_url": self.ws_url(&ticket),
                "ticket": ticket,
                "expires_in": self.services.config.session_ticket_ttl,
            }),
        );
        if let Ok(location) = format!("/sessions/{}", started.session.id).parse() {
            r.headers_mut().insert(http::header::LOCATION, location);
        }
        Ok(r)
    }

    async fn list(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        let params = web::query_params(req, &["limit", "next", "all", "state", "app", "owner"])?;
        let (limit, after) = web::paging(&params, &self.services.config)?;
        let param = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let (sessions, next) = if param("all").as_deref() == Some("true") {
            who.require_admin()?;
            let filters =
                ["state", "app", "owner"].into_iter().filter_map(|n| param(n).map(|v| (n.to_owned(), v))).collect();
            self.sessions().list_all(filters, limit, after).await?
        } else {
            if ["state", "app", "owner"].iter().any(|n| param(n).is_some()) {
                return Err(Error::bad_request(codes::INVALID_QUERY, "filters need all=true (administrators)"));
            }
            self.sessions().list_owned(&who.username, limit, after).await?
        };
        let items: Vec<_> = sessions.iter().map(Session::view).collect();
        Ok(web::json(StatusCode::OK, &json!({"items": items, "next": next.as_ref().map(Cursor::as_str)})))
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

    async fn get(&self, req: &ApiRequest, id: &str) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        Ok(web::json(StatusCode::OK, &self.visible(&who, id).await?.view()))
    }

    async fn stop(&self, req: &ApiRequest, id: &str) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        let session = self.visible(&who, id).await?;
        let reason = if session.owner == who.username { "stopped_by_owner" } else { "stopped_by_admin" };
        self.sessions().end(id, reason).await?;
        Ok(web::empty(StatusCode::NO_CONTENT))
    }

    async fn ticket(&self, req: &ApiRequest, id: &str) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        let session = self.visible(&who, id).await?;
        if session.owner != who.username {
            return Err(Error::Forbidden("only the owner joins a session".into()));
        }
        if session.state == SessionState::Stopped || session.client_conn.is_some() {
            return Err(Error::Conflict("the session has ended or its client is connected".into()));
        }
        let ticket = self.sessions().ticket(id, Side::Client).await?;
        Ok(web::json(
            StatusCode::CREATED,
            &json!({"session_id": id, "ws_url": self.ws_url(&ticket), "ticket": ticket, "expires_in": self.services.config.session_ticket_ttl}),
        ))
    }
}

/// The WebSocket API's routes.
pub struct RelayApi {
    services: Arc<Services>,
}

impl RelayApi {
    pub fn new(services: Arc<Services>) -> Self {
        RelayApi { services }
    }

    fn relay(&self) -> Relay<'_> {
        let s = &self.services;
        Relay {
            sessions: Sessions { table: s.table.as_ref(), pusher: s.pusher.as_ref(), config: &s.config },
            limiter: &s.rate_limiter,
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
