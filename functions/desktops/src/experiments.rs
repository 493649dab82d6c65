//! The caller's experiments, from the facility's user office, and their favourites.

use axum::extract::State;
use http::StatusCode;
use portico_core::Error;
use portico_core::openapi::errors::{Error400, Error401, Error404, Error502, Error503, Error504};
use portico_core::web::{self, PathParams, Query, Request};
use portico_desktops::experiments::{ExperimentPage, ExperimentQuery, Favorites, page_of};

use super::{Answer, Api};

/// List my experiments
///
/// A page of the caller's experiments as the facility's user office lists them (`search`,
/// `ordering`, `page`, `page_size` passed through; reused for `user_office_cache_ttl`
/// seconds), the caller's favourites first. 503 when no user office is configured
/// (`experiments_url`).
#[utoipa::path(get, path = "/experiments", tag = "desktops", params(ExperimentQuery), responses(
    (status = 200, description = "A page of the caller's experiments", body = ExperimentPage),
    (status = 400, response = Error400), (status = 401, response = Error401),
    (status = 502, response = Error502), (status = 503, response = Error503), (status = 504, response = Error504),
))]
pub(crate) async fn list(
    State(api): Api,
    query: Result<Query<ExperimentQuery>, Error>,
    Request(req): Request,
) -> Answer {
    let who = api.services.principal(&req).await?;
    let listing = query?.0.listing()?;
    let table = api.services.table.as_ref();
    Ok(web::json(StatusCode::OK, &page_of(&api.clients.user_office, table, &who.username, &listing).await?))
}

/// Mark an experiment as a favourite
///
/// One the user office lists for the caller (else 404).
#[utoipa::path(put, path = "/experiments/{proposal_id}/favorite", tag = "desktops", params(ProposalPath),
    responses(
        (status = 204, description = "Marked"),
        (status = 401, response = Error401), (status = 404, response = Error404),
        (status = 502, response = Error502), (status = 503, response = Error503), (status = 504, response = Error504),
    ),
)]
pub(crate) async fn favor(
    State(api): Api,
    PathParams(proposal_id): PathParams<String>,
    Request(req): Request,
) -> Answer {
    let who = api.services.principal(&req).await?;
    api.clients.user_office.experiment(&who.username, &proposal_id).await?;
    Favorites { table: api.services.table.as_ref() }.add(&who.username, &proposal_id).await?;
    Ok(web::empty(StatusCode::NO_CONTENT))
}

/// Unmark a favourite experiment
#[utoipa::path(delete, path = "/experiments/{proposal_id}/favorite", tag = "desktops", params(ProposalPath),
    responses(
        (status = 204, description = "Unmarked (or it was not marked)"),
        (status = 401, response = Error401), (status = 404, response = Error404), (status = 503, response = Error503),
    ),
)]
pub(crate) async fn unfavor(
    State(api): Api,
    PathParams(proposal_id): PathParams<String>,
    Request(req): Request,
) -> Answer {
    let who = api.services.principal(&req).await?;
    Favorites { table: api.services.table.as_ref() }.remove(&who.username, &proposal_id).await?;
    Ok(web::empty(StatusCode::NO_CONTENT))
}

/// An experiment's `proposal_id` in the path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Read by the derive only: the handlers read the path.
struct ProposalPath {
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    proposal_id: String,
}
