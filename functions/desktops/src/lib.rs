//! The desktops route group (CalipsoPlus, seed 002): the registry of desktop environments
//! (administrators write it; anyone signed in lists and reads the environments they may
//! start, `desktop.start` on the environment's group; others are 404), and the caller's own
//! desktops (another's id is 404).
//!
//! | route | who may call | answer |
//! |-------|--------------|--------|
//! | `POST /desktops` `{"environment"}` | who may start it | 201 the desktop, `starting`; a `link` environment: 200 its link |
//! | `GET /desktops` | signed in | a page of the caller's desktops (`all=true`: every live one, administrators) |
//! | `GET /desktops/{id}` | its owner | the desktop, refreshed from its Pod |
//! | `DELETE /desktops/{id}` | its owner; administrators with `owner=` | the desktop, `ended` (`stopped`) |
//! | `POST /desktops/{id}/extend` `{"seconds"}` | its owner | the desktop, its end moved (up to `latest_end`) |
//! | `POST /desktops/{id}/connection` | its owner, the desktop ready; with `owner=`, a viewer | the URL that opens it in Guacamole, once, within a minute (a viewer: read-only) |
//! | `PUT`, `DELETE /desktops/{id}/viewers/{username}` | its owner | the desktop, with its viewers |
//! | `GET /experiments` | signed in | a page of the caller's experiments from the user office, favourites first |
//! | `PUT /experiments/{proposal_id}/favorite` | signed in, the experiment theirs | 204 |
//! | `DELETE /experiments/{proposal_id}/favorite` | signed in | 204 |
//! | `GET /environments` | signed in | a page of the environments the caller may start |
//! | `GET /environments/{name}` | who may start it | the environment |
//! | `PUT /environments/{name}` | admins | the environment, 201 created / 200 replaced |
//! | `DELETE /environments/{name}` | admins | 204 |

use std::sync::Arc;

use axum::extract::State;
use http::StatusCode;
use portico_core::openapi::errors::{
    Error400, Error401, Error403, Error404, Error409, Error413, Error415, Error502, Error503, Error504, ListErrors,
    ReadErrors, UpstreamChangeErrors, UpstreamReadErrors,
};
use portico_core::openapi::{EnvironmentPath, Paging};
use portico_core::web::{self, ApiResponse, NoFilters, PagedQuery, PathParams, Query, Request, Routes};
use portico_core::{Error, Services};
use portico_desktops::DesktopClients;
use portico_desktops::connection::{DesktopConnection, Guacamole};
use portico_desktops::desktops::{DesktopView, Desktops, Started};
use portico_desktops::environments::{Environment, EnvironmentInput, Environments};
use portico_desktops::guacamole::SecretKey;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod experiments;

/// The desktops route group's state.
pub struct DesktopsApi {
    services: Arc<Services>,
    clients: Arc<DesktopClients>,
}

impl DesktopsApi {
    /// The API over `services` with the desktops' clients (the sweep's; [`DesktopsApi::routes`]
    /// serves it).
    pub fn new(services: Arc<Services>, clients: Arc<DesktopClients>) -> Self {
        DesktopsApi { services, clients }
    }

    /// The group, serving `services` with the desktops' clients.
    pub fn routes(services: Arc<Services>, clients: Arc<DesktopClients>) -> Routes {
        let config = services.config.clone();
        Routes::new("desktops", &config, Arc::new(DesktopsApi::new(services, clients)), declared())
    }

    /// Follows every live desktop (the `desktops-sweeper` function, on a schedule).
    pub async fn sweep(&self) -> Result<usize, Error> {
        self.desktops().sweep().await
    }

    fn environments(&self) -> Environments<'_> {
        Environments { table: self.services.table.as_ref() }
    }

    fn desktops(&self) -> Desktops<'_> {
        Desktops {
            table: self.services.table.as_ref(),
            cluster: self.clients.cluster.as_ref(),
            user_office: &self.clients.user_office,
            config: &self.services.config,
        }
    }
}

/// Every route of the group, each declared on its handler.
pub fn declared() -> OpenApiRouter<Arc<DesktopsApi>> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get, put, delete))
        .routes(routes!(start, list_desktops))
        .routes(routes!(get_desktop, stop))
        .routes(routes!(connect))
        .routes(routes!(extend))
        .routes(routes!(allow_viewer, remove_viewer))
        .routes(routes!(experiments::list))
        .routes(routes!(experiments::favor, experiments::unfavor))
}

pub(crate) type Api = State<Arc<DesktopsApi>>;
pub(crate) type Answer = Result<ApiResponse, Error>;

/// A page of environments.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentPage {
    pub items: Vec<Environment>,
    /// The cursor of the next page (`next=`), if any.
    pub next: Option<String>,
}

/// List desktop environments
///
/// Those the caller may start (`desktop.start` on their group); administrators see every one.
/// Pages may be short.
#[utoipa::path(get, path = "/environments", tag = "desktops", params(Paging), responses(
    (status = 200, description = "A page of environments", body = EnvironmentPage),
    ListErrors,
))]
async fn list(State(api): Api, query: Result<PagedQuery<NoFilters>, Error>, Request(req): Request) -> Answer {
    let who = api.services.principal(&req).await?;
    let (limit, after) = query?.paging(&api.services.config)?;
    let (items, next) = api.environments().list(&who, limit, after).await?;
    let next = next.map(|c| c.as_str().to_owned());
    Ok(web::json(StatusCode::OK, &EnvironmentPage { items, next }))
}

/// Get a desktop environment
///
/// 404 unless the caller may start it.
#[utoipa::path(get, path = "/environments/{name}", tag = "desktops", params(EnvironmentPath), responses(
    (status = 200, description = "The environment", body = Environment),
    ReadErrors,
))]
async fn get(State(api): Api, PathParams(name): PathParams<String>, Request(req): Request) -> Answer {
    let who = api.services.principal(&req).await?;
    Ok(web::json(StatusCode::OK, &api.environments().startable(&who, &name).await?))
}

/// Create or replace a desktop environment
///
/// Administrators.
#[utoipa::path(put, path = "/environments/{name}", tag = "desktops", params(EnvironmentPath),
    request_body = EnvironmentInput,
    responses(
        (status = 200, description = "Replaced", body = Environment),
        (status = 201, description = "Created", body = Environment),
        (status = 400, response = Error400), (status = 401, response = Error401), (status = 403, response = Error403),
        (status = 413, response = Error413), (status = 415, response = Error415), (status = 503, response = Error503),
    ),
)]
async fn put(State(api): Api, PathParams(name): PathParams<String>, Request(req): Request) -> Answer {
    api.services.require_admin(&req).await?;
    let input: EnvironmentInput = web::json_body(&req, &api.services.config)?;
    let (environment, created) = api.environments().put(&name, input).await?;
    Ok(web::json(if created { StatusCode::CREATED } else { StatusCode::OK }, &environment))
}

/// Delete a desktop environment
///
/// Administrators. Desktops already running keep running.
#[utoipa::path(delete, path = "/environments/{name}", tag = "desktops", params(EnvironmentPath), responses(
    (status = 204, description = "Deleted"),
    (status = 401, response = Error401), (status = 403, response = Error403),
    (status = 404, response = Error404), (status = 503, response = Error503),
))]
async fn delete(State(api): Api, PathParams(name): PathParams<String>, Request(req): Request) -> Answer {
    api.services.require_admin(&req).await?;
    api.environments().delete(&name).await?;
    Ok(web::empty(StatusCode::NO_CONTENT))
}

/// `POST /desktops`' body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartDesktop {
    /// The environment's name.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,39}$")]
    pub environment: String,
    /// Seconds it runs before it is stopped (300 to the environment's `max_lifetime`, the
    /// default); extend it later up to that maximum.
    #[serde(default)]
    #[schema(minimum = 300, maximum = 604800)]
    pub lifetime: Option<u64>,
    /// The experiment (its `proposal_id`, one the user office lists for the caller) whose
    /// datasets it mounts and whose uid/gid it runs as.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub experiment: Option<String>,
}

/// `POST /desktops/{id}/extend`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendDesktop {
    /// Seconds added to its end, up to its `latest_end`.
    #[schema(minimum = 1, maximum = 604800)]
    pub seconds: u64,
}

/// A `link` environment's answer: where to go (nothing runs, nothing is reserved).
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct DesktopLink {
    pub environment: String,
    pub link: String,
}

/// A page of the caller's desktops.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct DesktopPage {
    pub items: Vec<DesktopView>,
    /// The cursor of the next page (`next=`), if any.
    pub next: Option<String>,
}

/// Start a desktop
///
/// Needs `desktop.start` on the environment's group (else 404, as for an environment that does
/// not exist); an `experiment` the user office lists for the caller (else 404), or, without
/// one, the facility's authorization when it is configured (else 403); and room in the caller's quota (one `desktops`, and the environment's cpu,
/// memory and storage; else 409 `quota_exceeded`). The Pod starts in the background: read the
/// desktop until it is `ready`.
#[utoipa::path(post, path = "/desktops", tag = "desktops", request_body = StartDesktop, responses(
    (status = 201, description = "The desktop, `starting`", body = DesktopView),
    (status = 200, description = "A `link` environment's link", body = DesktopLink),
    (status = 400, response = Error400), (status = 401, response = Error401),
    (status = 403, response = Error403), (status = 404, response = Error404),
    (status = 409, response = Error409),
    (status = 413, response = Error413), (status = 415, response = Error415),
    (status = 502, response = Error502), (status = 503, response = Error503), (status = 504, response = Error504),
))]
async fn start(State(api): Api, Request(req): Request) -> Answer {
    let who = api.services.principal(&req).await?;
    let body: StartDesktop = web::json_body(&req, &api.services.config)?;
    let experiment = body.experiment.as_deref();
    match api.desktops().start(&who, &body.environment, body.lifetime, experiment).await? {
        Started::Desktop(desktop) => Ok(web::json(StatusCode::CREATED, &desktop)),
        Started::Link(link) => Ok(web::json(StatusCode::OK, &DesktopLink { environment: body.environment, link })),
    }
}

/// `GET /desktops`' own parameter.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DesktopFilters {
    /// `true`: every live desktop, anyone's (administrators; else 403).
    #[param(value_type = Option<bool>)]
    all: Option<String>,
}

/// `DELETE /desktops/{id}`'s parameter.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct OwnerQuery {
    /// The desktop's owner, when not the caller (administrators; else 403).
    owner: Option<String>,
}

/// List my desktops
///
/// As recorded; read one to refresh it from its Pod. With `all=true`, administrators list every
/// live desktop, anyone's (a read per desktop).
#[utoipa::path(get, path = "/desktops", tag = "desktops", params(Paging, DesktopFilters), responses(
    (status = 200, description = "A page of desktops", body = DesktopPage),
    (status = 400, response = Error400), (status = 401, response = Error401), (status = 403, response = Error403),
    (status = 503, response = Error503),
))]
async fn list_desktops(
    State(api): Api,
    query: Result<PagedQuery<DesktopFilters>, Error>,
    Request(req): Request,
) -> Answer {
    let who = api.services.principal(&req).await?;
    let query = query?;
    let (limit, after) = query.paging(&api.services.config)?;
    let (items, next) = match query.filters.all.as_deref() {
        None | Some("false") => api.desktops().list(&who.username, limit, after).await?,
        Some("true") => {
            who.require_admin()?;
            api.desktops().list_live(limit, after).await?
        }
        Some(_) => return Err(Error::bad_request(portico_core::codes::INVALID_QUERY, "'all' must be true or false")),
    };
    Ok(web::json(StatusCode::OK, &DesktopPage { items, next: next.map(|c| c.as_str().to_owned()) }))
}

/// Get a desktop
///
/// The caller's own, refreshed from its Pod: `starting` (with the Pod's events as progress),
/// `ready`, or `ended` with the reason (its lifetime over, its Pod gone or evicted).
#[utoipa::path(get, path = "/desktops/{id}", tag = "desktops", params(DesktopPath), responses(
    (status = 200, description = "The desktop", body = DesktopView),
    UpstreamReadErrors,
))]
async fn get_desktop(State(api): Api, PathParams(id): PathParams<String>, Request(req): Request) -> Answer {
    let who = api.services.principal(&req).await?;
    Ok(web::json(StatusCode::OK, &api.desktops().get(&who.username, &id).await?))
}

/// Stop a desktop
///
/// Its Pod deleted (its Secret and Service follow), its quota given back; an ended one is 409.
/// Its results folder stays. Administrators stop another's with `owner`.
#[utoipa::path(delete, path = "/desktops/{id}", tag = "desktops", params(DesktopPath, OwnerQuery), responses(
    (status = 200, description = "The desktop, `ended`", body = DesktopView),
    (status = 400, response = Error400), (status = 403, response = Error403),
    UpstreamChangeErrors,
))]
async fn stop(
    State(api): Api,
    PathParams(id): PathParams<String>,
    query: Result<Query<OwnerQuery>, Error>,
    Request(req): Request,
) -> Answer {
    let who = api.services.principal(&req).await?;
    let owner = match query?.0.owner {
        Some(owner) if owner != who.username => {
            who.require_admin()?;
            owner
        }
        _ => who.username.clone(),
    };
    Ok(web::json(StatusCode::OK, &api.desktops().stop(&owner, &id).await?))
}

/// Open a desktop
///
/// The caller's own, once it is `ready` (else 409): a Guacamole login for exactly this desktop's
/// connection, valid for a minute and once, exchanged with Guacamole for a token and answered
/// as the URL that opens the desktop. With `owner`, another's desktop that its owner lets the
/// caller watch (else 404): a read-only view joining the owner's connection, which shows the
/// desktop while the owner has it open. 503 when no Guacamole is configured (`guacamole_url`).
#[utoipa::path(post, path = "/desktops/{id}/connection", tag = "desktops", params(DesktopPath, ViewOf),
    responses(
        (status = 200, description = "The URL that opens the desktop", body = DesktopConnection),
        (status = 400, response = Error400),
        UpstreamChangeErrors,
    ),
)]
async fn connect(
    State(api): Api,
    PathParams(id): PathParams<String>,
    query: Result<Query<ViewOf>, Error>,
    Request(req): Request,
) -> Answer {
    let who = api.services.principal(&req).await?;
    let owner = query?.0.owner.filter(|o| *o != who.username);
    let config = &api.services.config;
    let url = config
        .guacamole_url
        .as_deref()
        .ok_or_else(|| Error::Unavailable("no Guacamole is configured to open desktops (guacamole_url)".into()))?;
    let raw = api.services.secrets.get(&config.guacamole_key_secret_id).await?;
    let key =
        SecretKey::from_hex(&raw).map_err(|e| Error::Internal(format!("{}: {e}", config.guacamole_key_secret_id)))?;
    let guacamole = Guacamole { url, key, http: &api.services.http };
    let opened = match owner {
        Some(owner) => api.desktops().view_connection(&who.username, &owner, &id, &guacamole).await?,
        None => api.desktops().connection(&who.username, &id, &guacamole).await?,
    };
    Ok(web::json(StatusCode::OK, &opened))
}

/// `POST /desktops/{id}/connection`'s parameter.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ViewOf {
    /// The desktop's owner, when it is another's that its owner lets the caller watch.
    owner: Option<String>,
}

/// Let a user watch a desktop
///
/// The caller's own desktop: `username` may then open a read-only view of it
/// (`POST /desktops/{id}/connection?owner=<caller>`). At most 10 viewers; an ended desktop is 409.
#[utoipa::path(put, path = "/desktops/{id}/viewers/{username}", tag = "desktops", params(DesktopPath, ViewerPath),
    responses(
        (status = 200, description = "The desktop, with its viewers", body = DesktopView),
        (status = 400, response = Error400), (status = 401, response = Error401), (status = 404, response = Error404),
        (status = 409, response = Error409), (status = 503, response = Error503),
    ),
)]
async fn allow_viewer(
    State(api): Api,
    PathParams((id, viewer)): PathParams<(String, String)>,
    Request(req): Request,
) -> Answer {
    let who = api.services.principal(&req).await?;
    Ok(web::json(StatusCode::OK, &api.desktops().set_viewer(&who.username, &id, &viewer, true).await?))
}

/// Stop letting a user watch a desktop
///
/// The caller's own desktop; a user who was not a viewer: no change.
#[utoipa::path(delete, path = "/desktops/{id}/viewers/{username}", tag = "desktops", params(DesktopPath, ViewerPath),
    responses(
        (status = 200, description = "The desktop, with its viewers", body = DesktopView),
        (status = 400, response = Error400), (status = 401, response = Error401), (status = 404, response = Error404),
        (status = 503, response = Error503),
    ),
)]
async fn remove_viewer(
    State(api): Api,
    PathParams((id, viewer)): PathParams<(String, String)>,
    Request(req): Request,
) -> Answer {
    let who = api.services.principal(&req).await?;
    Ok(web::json(StatusCode::OK, &api.desktops().set_viewer(&who.username, &id, &viewer, false).await?))
}

/// A viewer's username in the path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Read by the derive only: the handlers read the path.
struct ViewerPath {
    #[param(pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    username: String,
}

/// Extend a desktop
///
/// The caller's own: its end moves by `seconds`, up to its `latest_end` (the environment's
/// maximum lifetime after the start; past it, 400 naming `seconds`); an ended one is 409.
#[utoipa::path(post, path = "/desktops/{id}/extend", tag = "desktops", params(DesktopPath),
    request_body = ExtendDesktop,
    responses(
        (status = 200, description = "The desktop, its end moved", body = DesktopView),
        (status = 400, response = Error400), (status = 401, response = Error401), (status = 404, response = Error404),
        (status = 409, response = Error409), (status = 413, response = Error413), (status = 415, response = Error415),
        (status = 503, response = Error503),
    ),
)]
async fn extend(State(api): Api, PathParams(id): PathParams<String>, Request(req): Request) -> Answer {
    let who = api.services.principal(&req).await?;
    let body: ExtendDesktop = web::json_body(&req, &api.services.config)?;
    Ok(web::json(StatusCode::OK, &api.desktops().extend(&who.username, &id, body.seconds).await?))
}

/// A desktop's id in the path (`{id}`): what a start answers, 16 lowercase hex digits.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Read by the derive only: the handlers read the path.
struct DesktopPath {
    #[param(pattern = "^[0-9a-f]{16}$")]
    id: String,
}
