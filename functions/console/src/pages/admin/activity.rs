//! Everyone's sessions and jobs (`?all=true`, administrators only), filtered as the API
//! filters them, with a button to end a session or cancel an unfinished job.

use http::{Method, StatusCode};
use maud::{Markup, html};
use portico_core::web::ApiResponse;
use serde::Deserialize;

use super::{Listing, done_notice, listing, pager, shown};
use crate::backend::ApiError;
use crate::guard::{self, BASE, segment};
use crate::layout::{alert, csrf_field, html_response, page};
use crate::{Ctx, Form};

const STATES: &[&str] = &["connecting", "active", "idle", "stopped"];
const PHASES: &[&str] = &["Submitting", "Pending", "Running", "Succeeded", "Failed", "Error"];
const FINAL_PHASES: &[&str] = &["Succeeded", "Failed", "Error"];

/// A listing's filters: (query name, label, choices; a text field when empty).
type Filter = (&'static str, &'static str, &'static [&'static str]);
const SESSION_FILTERS: [Filter; 3] = [("state", "State", STATES), ("app", "App", &[]), ("owner", "Owner", &[])];
const JOB_FILTERS: [Filter; 3] = [("phase", "Phase", PHASES), ("recipe", "Recipe", &[]), ("owner", "Owner", &[])];

#[derive(Deserialize)]
struct SessionRow {
    id: String,
    owner: String,
    app: String,
    state: String,
    #[serde(default)]
    created_at: String,
    #[serde(default)]
    ends_at: String,
    ended_reason: Option<String>,
}

#[derive(Deserialize)]
struct JobRow {
    id: String,
    owner: String,
    recipe: String,
    phase: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    created_at: String,
    finished_at: Option<String>,
}

/// The filter values, from the query (a listing) or from a posted form (after an action).
fn values(filters: &[Filter; 3], source: impl Fn(&str) -> String) -> [String; 3] {
    filters.map(|(name, _, _)| source(name))
}

fn pairs<'a>(filters: &[Filter; 3], values: &'a [String; 3]) -> Vec<(&'static str, &'a str)> {
    filters.iter().zip(values).map(|((name, _, _), v)| (*name, v.as_str())).collect()
}

/// The filter form (a `GET` of the listing).
fn filter_form(path: &str, filters: &[Filter; 3], values: &[String; 3]) -> Markup {
    html! {
        form.filters method="get" action={ (BASE) (path) } role="search" {
            @for ((name, label, choices), value) in filters.iter().zip(values) {
                div.field {
                    label for={ "f-" (name) } { (label) }
                    @if choices.is_empty() {
                        input id={ "f-" (name) } name=(name) value=(value) autocomplete="off";
                    } @else {
                        select id={ "f-" (name) } name=(name) {
                            option value="" selected[value.is_empty()] { "Any" }
                            @for c in *choices { option value=(c) selected[value == c] { (c) } }
                        }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
    }
}

/// Hidden copies of the filters, so an action returns to the same listing.
fn keep_filters(filters: &[Filter; 3], values: &[String; 3]) -> Markup {
    html! {
        @for ((name, _, _), value) in filters.iter().zip(values) {
            input type="hidden" name=(name) value=(value);
        }
    }
}

/// A `GET` of `/{what}?all=true` with the filters: its rows and next cursor, or the API's
/// refusal of a filter (shown above an empty table).
async fn fetch<T: serde::de::DeserializeOwned>(
    ctx: &Ctx<'_>,
    what: &str,
    query: &[(&str, &str)],
) -> Result<(Vec<T>, Option<String>, Option<ApiError>), ApiError> {
    let mut all = vec![("all", "true")];
    all.extend_from_slice(query);
    let Listing { items, next, error } = listing(ctx, &format!("/{what}"), &all).await?;
    Ok((items, next, error))
}

pub async fn sessions(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let filters = values(&SESSION_FILTERS, |n| ctx.query(n));
    sessions_page(ctx, &filters, None).await
}

async fn sessions_page(
    ctx: &Ctx<'_>,
    filters: &[String; 3],
    error: Option<&ApiError>,
) -> Result<ApiResponse, ApiError> {
    let next = ctx.query("next");
    let mut query = pairs(&SESSION_FILTERS, filters);
    query.push(("next", next.as_str()));
    let (rows, next, list_error): (Vec<SessionRow>, _, _) = fetch(ctx, "sessions", &query).await?;
    let body = html! {
        (done_notice(ctx))
        (alert(error.or(list_error.as_ref())))
        (filter_form("/admin/sessions", &SESSION_FILTERS, filters))
        @if rows.is_empty() && list_error.is_none() {
            p { "No sessions match." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "Session" } th scope="col" { "Owner" } th scope="col" { "App" }
                        th scope="col" { "State" } th scope="col" { "Started" } th scope="col" { "Ends" }
                        th scope="col" { "End" } } }
                    tbody {
                        @for s in &rows {
                            tr {
                                td { code { (s.id) } }
                                td { (s.owner) }
                                td { a href={ (BASE) "/apps/" (segment(&s.app)) } { (s.app) } }
                                td { span.status data-status=(s.state) { (s.state) } }
                                td { (s.created_at) }
                                td { (s.ends_at) }
                                td {
                                    @if s.state == "stopped" {
                                        (s.ended_reason.as_deref().unwrap_or("ended"))
                                    } @else {
                                        form.inline method="post" action={ (BASE) "/admin/sessions/" (segment(&s.id)) "/terminate" } {
                                            (csrf_field(&ctx.viewer))
                                            (keep_filters(&SESSION_FILTERS, filters))
                                            button.danger type="submit" aria-label={ "Terminate session " (s.id) }
                                                data-confirm={ "End " (s.owner) "'s session of " (s.app) "?" } { "Terminate" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (pager("/admin/sessions", &pairs(&SESSION_FILTERS, filters), next.as_deref(), "More sessions"))
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    Ok(html_response(status, page("All sessions", Some(&ctx.viewer), body)))
}

/// `POST /console/admin/sessions/{id}/terminate`: `DELETE /sessions/{id}`, back to the listing.
pub async fn terminate(ctx: &Ctx<'_>, id: &str) -> Result<ApiResponse, ApiError> {
    let form: Form = ctx.form();
    let filters = values(&SESSION_FILTERS, |n| form.get(n).to_owned());
    match ctx.api(Method::DELETE, format!("/sessions/{}", segment(id))).send().await {
        Ok(_) => Ok(back("/admin/sessions", &pairs(&SESSION_FILTERS, &filters), "terminated")),
        Err(e) => sessions_page(ctx, &filters, Some(&shown(e)?)).await,
    }
}

pub async fn jobs(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let filters = values(&JOB_FILTERS, |n| ctx.query(n));
    jobs_page(ctx, &filters, None).await
}

async fn jobs_page(ctx: &Ctx<'_>, filters: &[String; 3], error: Option<&ApiError>) -> Result<ApiResponse, ApiError> {
    let next = ctx.query("next");
    let mut query = pairs(&JOB_FILTERS, filters);
    query.push(("next", next.as_str()));
    let (rows, next, list_error): (Vec<JobRow>, _, _) = fetch(ctx, "jobs", &query).await?;
    let body = html! {
        (done_notice(ctx))
        (alert(error.or(list_error.as_ref())))
        (filter_form("/admin/jobs", &JOB_FILTERS, filters))
        @if rows.is_empty() && list_error.is_none() {
            p { "No jobs match." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "Job" } th scope="col" { "Owner" } th scope="col" { "Recipe" }
                        th scope="col" { "Group" } th scope="col" { "Phase" } th scope="col" { "Submitted" }
                        th scope="col" { "Finished" } th scope="col" { "Cancel" } } }
                    tbody {
                        @for j in &rows {
                            @let finished = FINAL_PHASES.contains(&j.phase.as_str());
                            tr {
                                td { a href={ (BASE) "/jobs/" (segment(&j.id)) } { code { (j.id) } } }
                                td { (j.owner) }
                                td { (j.recipe) }
                                td { (j.group) }
                                td { span.status data-status=(j.phase) { (j.phase) } }
                                td { (j.created_at) }
                                td { (j.finished_at.as_deref().unwrap_or("")) }
                                td {
                                    @if !finished {
                                        form.inline method="post" action={ (BASE) "/admin/jobs/" (segment(&j.id)) "/cancel" } {
                                            (csrf_field(&ctx.viewer))
                                            (keep_filters(&JOB_FILTERS, filters))
                                            button.danger type="submit" aria-label={ "Cancel job " (j.id) }
                                                data-confirm={ "Cancel " (j.owner) "'s job " (j.recipe) "?" } { "Cancel" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (pager("/admin/jobs", &pairs(&JOB_FILTERS, filters), next.as_deref(), "More jobs"))
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    Ok(html_response(status, page("All jobs", Some(&ctx.viewer), body)))
}

/// `POST /console/admin/jobs/{id}/cancel`: `DELETE /jobs/{id}`, back to the listing.
pub async fn cancel(ctx: &Ctx<'_>, id: &str) -> Result<ApiResponse, ApiError> {
    let form = ctx.form();
    let filters = values(&JOB_FILTERS, |n| form.get(n).to_owned());
    match ctx.api(Method::DELETE, format!("/jobs/{}", segment(id))).send().await {
        Ok(_) => Ok(back("/admin/jobs", &pairs(&JOB_FILTERS, &filters), "cancelled")),
        Err(e) => jobs_page(ctx, &filters, Some(&shown(e)?)).await,
    }
}

/// `303` to the listing at `path` with its filters and a `done` notice.
fn back(path: &str, filters: &[(&str, &str)], code: &'static str) -> ApiResponse {
    super::done(&format!("{BASE}{path}{}", guard::query(filters)), code)
}
