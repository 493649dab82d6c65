//! Everyone's sessions and jobs (`?all=true`, administrators only), filtered as the API
//! filters them, with a button to end a session or cancel an unfinished job. Both listings
//! are one [`Area`]: they differ only in their filters and their rows.

use http::{Method, StatusCode};
use maud::{Markup, html};
use portico_core::web::ApiResponse;
use serde::de::DeserializeOwned;

use super::{Listing, done, done_notice, listing, pager, shown};
use crate::Ctx;
use crate::backend::ApiError;
use crate::guard::{self, BASE, segment};
use crate::layout::{alert, csrf_field, html_response, page, table};
use crate::pages::jobs::JobView;
use portico_streaming::SessionView;

const STATES: &[&str] = &["connecting", "active", "idle", "stopped"];
const PHASES: &[&str] = &["Submitting", "Pending", "Running", "Succeeded", "Failed", "Error"];

/// A listing's filter: (query name, label, choices; a text field when empty).
type Filter = (&'static str, &'static str, &'static [&'static str]);
/// The filters' values, in the order of the area's filters.
type Values = [String; 3];

/// One of the two listings: the API's collection `/{what}`, shown at `/console/admin/{what}`.
pub struct Area<T> {
    what: &'static str,
    title: &'static str,
    filters: [Filter; 3],
    headers: &'static [&'static str],
    /// One row; the markup is the hidden copies of the filters its action form carries.
    row: fn(&Ctx<'_>, &T, &Markup) -> Markup,
    nothing: &'static str,
    more: &'static str,
    /// The `done` code after ending one.
    ended: &'static str,
}

pub const SESSIONS: Area<SessionView> = Area {
    what: "sessions",
    title: "All sessions",
    filters: [("state", "State", STATES), ("app", "App", &[]), ("owner", "Owner", &[])],
    headers: &["Session", "Owner", "App", "State", "Started", "Ends", "End"],
    row: session_row,
    nothing: "No sessions match.",
    more: "More sessions",
    ended: "terminated",
};

pub const JOBS: Area<JobView> = Area {
    what: "jobs",
    title: "All jobs",
    filters: [("phase", "Phase", PHASES), ("recipe", "Recipe", &[]), ("owner", "Owner", &[])],
    headers: &["Job", "Owner", "Recipe", "Group", "Phase", "Submitted", "Finished", "Cancel"],
    row: job_row,
    nothing: "No jobs match.",
    more: "More jobs",
    ended: "cancelled",
};

impl<T: DeserializeOwned> Area<T> {
    fn path(&self) -> String {
        format!("/admin/{}", self.what)
    }

    fn pairs<'a>(&self, values: &'a Values) -> Vec<(&'static str, &'a str)> {
        self.filters.iter().zip(values).map(|((name, _, _), v)| (*name, v.as_str())).collect()
    }

    /// `GET /console/admin/{what}`, filtered by the query.
    pub async fn list(&self, ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
        let values = self.filters.map(|(name, _, _)| ctx.query(name));
        self.page(ctx, &values, None).await
    }

    /// `POST /console/admin/{what}/{id}/...`: `DELETE /{what}/{id}`, back to the listing with
    /// the filters the form kept.
    pub async fn end(&self, ctx: &Ctx<'_>, id: &str) -> Result<ApiResponse, ApiError> {
        let form = ctx.form();
        let values = self.filters.map(|(name, _, _)| form.get(name).to_owned());
        match ctx.api(Method::DELETE, format!("/{}/{}", self.what, segment(id))).send().await {
            Ok(_) => {
                let back = format!("{BASE}{}{}", self.path(), guard::query(&self.pairs(&values)));
                Ok(done(&back, self.ended))
            }
            Err(e) => self.page(ctx, &values, Some(&shown(e)?)).await,
        }
    }

    /// The listing, or the API's refusal of a filter above an empty table; `error` is the
    /// refusal of an action, shown above it.
    async fn page(&self, ctx: &Ctx<'_>, values: &Values, error: Option<&ApiError>) -> Result<ApiResponse, ApiError> {
        let next = ctx.query("next");
        let mut query = vec![("all", "true")];
        query.extend(self.pairs(values));
        query.push(("next", next.as_str()));
        let Listing { items, next, error: list_error } = listing::<T>(ctx, &format!("/{}", self.what), &query).await?;
        let path = self.path();
        let kept = keep_filters(&self.filters, values);
        let body = html! {
            (done_notice(ctx))
            (alert(error.or(list_error.as_ref())))
            (filter_form(&path, &self.filters, values))
            @if items.is_empty() && list_error.is_none() {
                p { (self.nothing) }
            } @else {
                (table(self.headers, html! { @for item in &items { ((self.row)(ctx, item, &kept)) } }))
            }
            (pager(&path, &self.pairs(values), next.as_deref(), self.more))
        };
        let status = error.map_or(StatusCode::OK, |e| e.status);
        Ok(html_response(status, page(self.title, Some(&ctx.viewer), body)))
    }
}

fn session_row(ctx: &Ctx<'_>, s: &SessionView, kept: &Markup) -> Markup {
    html! {
        tr {
            td { code { (s.id) } }
            td { (s.owner) }
            td { a href={ (BASE) "/apps/" (segment(&s.app)) } { (s.app) } }
            td { span.status data-status=(s.state.as_str()) { (s.state.as_str()) } }
            td { (s.created_at) }
            td { (s.ends_at) }
            td {
                @if !crate::pages::sessions::is_live(s) {
                    (s.ended_reason.as_deref().unwrap_or("ended"))
                } @else {
                    form.inline method="post" action={ (BASE) "/admin/sessions/" (segment(&s.id)) "/terminate" } {
                        (csrf_field(&ctx.viewer))
                        (kept)
                        button.danger type="submit" aria-label={ "Terminate session " (s.id) }
                            data-confirm={ "End " (s.owner) "'s session of " (s.app) "?" } { "Terminate" }
                    }
                }
            }
        }
    }
}

fn job_row(ctx: &Ctx<'_>, j: &JobView, kept: &Markup) -> Markup {
    html! {
        tr {
            td { a href={ (BASE) "/jobs/" (segment(&j.id)) } { code { (j.id) } } }
            td { (j.owner) }
            td { (j.recipe) }
            td { (j.group) }
            td { span.status data-status=(j.phase.as_str()) { (j.phase.as_str()) } }
            td { (j.created_at) }
            td { (j.finished_at.as_deref().unwrap_or("")) }
            td {
                @if !j.phase.is_final() {
                    form.inline method="post" action={ (BASE) "/admin/jobs/" (segment(&j.id)) "/cancel" } {
                        (csrf_field(&ctx.viewer))
                        (kept)
                        button.danger type="submit" aria-label={ "Cancel job " (j.id) }
                            data-confirm={ "Cancel " (j.owner) "'s job " (j.recipe) "?" } { "Cancel" }
                    }
                }
            }
        }
    }
}

/// The filter form (a `GET` of the listing).
fn filter_form(path: &str, filters: &[Filter; 3], values: &Values) -> Markup {
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
fn keep_filters(filters: &[Filter; 3], values: &Values) -> Markup {
    html! {
        @for ((name, _, _), value) in filters.iter().zip(values) {
            input type="hidden" name=(name) value=(value);
        }
    }
}
