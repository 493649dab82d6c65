//! My desktops and my experiments: start a desktop (from an experiment, or without one), follow
//! it while it starts, open it in Guacamole, extend it, stop it; the experiments the facility's
//! user office lists, favourites first. Every action is one call to the desktops API.
//!
//! | route | what |
//! |-------|------|
//! | `GET /console/desktops` (`next`, `experiment`) | my desktops, and the start form |
//! | `POST /console/desktops` | `POST /desktops`, then the desktop's page |
//! | `GET /console/desktops/{id}` | the desktop, refreshed from its Pod (progress while starting) |
//! | `POST /console/desktops/{id}/open` | `POST /desktops/{id}/connection`: the link that opens it |
//! | `POST /console/desktops/{id}/extend` | `POST /desktops/{id}/extend`, then its page |
//! | `POST /console/desktops/{id}/stop` | `DELETE /desktops/{id}`, then my desktops |
//! | `POST /console/desktops/{id}/viewers` (`username`); `.../viewers/{user}/remove` | let a user watch it, read-only; no longer |
//! | `GET /console/experiments` (`page`, `search`) | my experiments, favourites first |
//! | `POST /console/experiments/{proposal_id}/favorite` (`on`) | mark or unmark it, then my experiments |

use http::{Method, StatusCode};
use maud::{Markup, html};
use portico_core::web::ApiResponse;
use portico_desktops::desktops::{DesktopState, DesktopView};
use portico_desktops::environments::Environment;
use portico_desktops::experiments::{ExperimentPage, ExperimentView};
use serde_json::json;

use crate::Ctx;
use crate::backend::ApiError;
use crate::guard::{self, BASE, decode, name_segment, segment};
use crate::layout::{FieldAttrs, alert, csrf_field, form_alert, html_response, notice, page, table, text_field, when};
use crate::pages::{Listing, listing, pager, shown};

pub async fn route(ctx: &Ctx<'_>, rest: &[&str]) -> Result<ApiResponse, ApiError> {
    match (ctx.req.method(), rest) {
        (&Method::GET, []) => list(ctx, None).await,
        (&Method::POST, []) => start(ctx).await,
        (&Method::GET, [id]) => show(ctx, id, None).await,
        (&Method::POST, [id, "open"]) => open(ctx, id).await,
        (&Method::POST, [id, "extend"]) => extend(ctx, id).await,
        (&Method::POST, [id, "stop"]) => stop(ctx, id).await,
        (&Method::POST, [id, "viewers"]) => viewer(ctx, id, ctx.form().get("username").trim(), Method::PUT).await,
        (&Method::POST, [id, "viewers", user, "remove"]) => viewer(ctx, id, &decode(user), Method::DELETE).await,
        _ => Err(super::not_found()),
    }
}

pub async fn experiments_route(ctx: &Ctx<'_>, rest: &[&str]) -> Result<ApiResponse, ApiError> {
    match (ctx.req.method(), rest) {
        (&Method::GET, []) => experiments(ctx, None).await,
        (&Method::POST, [proposal_id, "favorite"]) => favorite(ctx, proposal_id).await,
        _ => Err(super::not_found()),
    }
}

fn page_of(id: &str) -> String {
    format!("{BASE}/desktops/{}", segment(id))
}

/// `starting`, `ready` or `ended`, as a badge, with the reason an ended one gives.
fn state(d: &DesktopView) -> Markup {
    let name = match d.state {
        DesktopState::Starting => "starting",
        DesktopState::Ready => "ready",
        DesktopState::Ended => "ended",
    };
    html! {
        span.status data-status=(name) { (name) }
        @if let Some(reason) = &d.reason { " " span.hint { "(" (reason) ")" } }
    }
}

/// The start form's choices: what the caller may start, and their experiments (none when the
/// facility has no user office here).
struct Choices {
    environments: Vec<Environment>,
    experiments: Vec<ExperimentView>,
    experiments_note: Option<String>,
}

async fn choices(ctx: &Ctx<'_>) -> Result<Choices, ApiError> {
    let environments = listing::<Environment>(ctx, "/environments", &[("limit", "100")]).await?.items;
    let (experiments, experiments_note) = match ctx.api(Method::GET, "/experiments?page_size=100").send().await {
        Ok(answer) => (answer.json::<ExperimentPage>()?.items, None),
        Err(e) => (Vec::new(), Some(format!("Your experiments cannot be listed now ({}).", e.message))),
    };
    Ok(Choices { environments, experiments, experiments_note })
}

async fn list(ctx: &Ctx<'_>, error: Option<&ApiError>) -> Result<ApiResponse, ApiError> {
    let next = ctx.query("next");
    let Listing { items: desktops, next, error: listing_error } =
        listing::<DesktopView>(ctx, "/desktops", &[("next", next.as_str())]).await?;
    let choices = choices(ctx).await?;
    let chosen = ctx.query("experiment");
    let stopped = (ctx.query("stopped") == "1").then_some("The desktop has been stopped; its results folder stays.");
    let body = html! {
        (notice(stopped))
        (alert(listing_error.as_ref()))
        @if desktops.is_empty() && listing_error.is_none() {
            p { "You have no desktops yet." }
        } @else if !desktops.is_empty() {
            (table(&["Environment", "Experiment", "State", "Ends", "Actions"], html! {
                @for d in &desktops { (row(ctx, d)) }
            }))
        }
        (pager("/desktops", &[], next.as_deref(), "More desktops"))
        (start_form(ctx, &choices, &chosen, error))
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    Ok(html_response(status, page("My desktops", Some(&ctx.viewer), body)))
}

fn row(ctx: &Ctx<'_>, d: &DesktopView) -> Markup {
    let label = format!("the {} desktop {}", d.environment, d.id);
    html! {
        tr {
            td { a href=(page_of(&d.id)) aria-label={ "Details of " (label) } { (d.environment) } }
            td { (d.experiment.as_deref().unwrap_or("—")) }
            td { (state(d)) }
            td { @if d.state != DesktopState::Ended { (when(&d.ends_at)) } }
            td {
                div.actions {
                    @if d.state == DesktopState::Ready { (action(ctx, d, "open", "Open", &label, false)) }
                    @if d.state != DesktopState::Ended { (action(ctx, d, "stop", "Stop", &label, true)) }
                }
            }
        }
    }
}

/// A one-button form posting to the desktop's `verb`.
fn action(ctx: &Ctx<'_>, d: &DesktopView, verb: &str, text: &str, label: &str, danger: bool) -> Markup {
    html! {
        form.inline method="post" action={ (page_of(&d.id)) "/" (verb) } {
            (csrf_field(&ctx.viewer))
            @if danger {
                button.danger type="submit" data-confirm={ "Stop " (label) "? Its results folder stays." }
                    aria-label={ (text) " " (label) } { (text) }
            } @else {
                button type="submit" aria-label={ (text) " " (label) } { (text) }
            }
        }
    }
}

fn start_form(ctx: &Ctx<'_>, choices: &Choices, chosen: &str, error: Option<&ApiError>) -> Markup {
    let problem = |name: &str| error.filter(|e| e.field() == Some(name));
    html! {
        section.card aria-labelledby="start-title" {
            h2 id="start-title" { "Start a desktop" }
            @if choices.environments.is_empty() {
                p { "No desktop environment is open to you." }
            } @else {
                form method="post" action={ (BASE) "/desktops" } {
                    (csrf_field(&ctx.viewer))
                    (form_alert(error, &["environment", "experiment", "lifetime"]))
                    div.field {
                        label for="f-environment" { "Environment" }
                        select id="f-environment" name="environment" required
                            aria-invalid=[problem("environment").map(|_| "true")] {
                            @for e in &choices.environments {
                                option value=(e.name) { (e.title) " (" (e.name) ")" }
                            }
                        }
                        @if let Some(e) = problem("environment") { p.field-error { (e.message) } }
                    }
                    div.field {
                        label for="f-experiment" { "Experiment (its data is mounted read-only)" }
                        select id="f-experiment" name="experiment" aria-describedby="f-experiment-hint"
                            aria-invalid=[problem("experiment").map(|_| "true")] {
                            option value="" { "None" }
                            @for x in &choices.experiments {
                                option value=(x.proposal_id) selected[x.proposal_id == chosen] {
                                    @if x.favorite { "★ " } (x.proposal_id) ": " (x.subject)
                                }
                            }
                        }
                        p.hint id="f-experiment-hint" {
                            (choices.experiments_note.as_deref().unwrap_or("Favourites first; see "))
                            @if choices.experiments_note.is_none() { a href={ (BASE) "/experiments" } { "my experiments" } "." }
                        }
                    }
                    (text_field("Lifetime in seconds (empty: the environment's maximum)", "lifetime", "",
                        problem("lifetime"), FieldAttrs { kind: "number", ..Default::default() }))
                    button type="submit" { "Start" }
                }
            }
        }
    }
}

async fn start(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let form = ctx.form();
    let mut body = json!({"environment": form.get("environment")});
    if !form.get("experiment").is_empty() {
        body["experiment"] = json!(form.get("experiment"));
    }
    if !form.get("lifetime").trim().is_empty() {
        match form.get("lifetime").trim().parse::<u64>() {
            Ok(seconds) => body["lifetime"] = json!(seconds),
            Err(_) => {
                let mut e = super::bad_request("The lifetime is a whole number of seconds.");
                e.field = Some("lifetime".into());
                return list(ctx, Some(&e)).await;
            }
        }
    }
    match ctx.api(Method::POST, "/desktops").json(&body).send().await {
        Ok(answer) => match answer.body["link"].as_str() {
            // A `link` environment: nothing runs; the link is where to go.
            Some(link) => {
                let title = "A link environment";
                let body = html! { p { "This environment is a link: " a href=(link) rel="noopener" { (link) } } };
                Ok(html_response(StatusCode::OK, page(title, Some(&ctx.viewer), body)))
            }
            None => Ok(guard::redirect(&page_of(answer.body["id"].as_str().unwrap_or_default()))),
        },
        Err(e) => list(ctx, Some(&shown(e)?)).await,
    }
}

async fn show(ctx: &Ctx<'_>, id: &str, error: Option<&ApiError>) -> Result<ApiResponse, ApiError> {
    let d: DesktopView = ctx.api(Method::GET, format!("/desktops/{}", segment(id))).send().await?.json()?;
    let label = format!("the {} desktop", d.environment);
    let body = html! {
        (alert(error))
        dl {
            dt { "Environment" } dd { (d.environment) }
            dt { "Experiment" } dd { (d.experiment.as_deref().unwrap_or("none")) }
            dt { "State when loaded" } dd { (state(&d)) }
            dt { "Started" } dd { (when(&d.created_at)) }
            @if d.state != DesktopState::Ended {
                dt { "Ends" } dd { (when(&d.ends_at)) }
                dt { "Can be extended until" } dd { (when(&d.latest_end)) }
            }
        }
        @if d.state == DesktopState::Starting {
            section aria-labelledby="progress-title" {
                h2 id="progress-title" { "Progress" }
                @if d.progress.is_empty() { p { "Waiting for the cluster." } }
                ol { @for step in &d.progress { li { (step) } } }
                p { a href=(page_of(&d.id)) { "Refresh" } }
            }
        }
        @if d.state != DesktopState::Ended {
            div.actions {
                @if d.state == DesktopState::Ready { (action(ctx, &d, "open", "Open", &label, false)) }
                (action(ctx, &d, "stop", "Stop", &label, true))
            }
            section aria-labelledby="viewers-title" {
                h2 id="viewers-title" { "Who may watch (read-only)" }
                @if d.viewers.is_empty() { p { "Nobody else." } }
                ul {
                    @for v in &d.viewers {
                        li {
                            (v) " "
                            form.inline method="post" action={ (page_of(&d.id)) "/viewers/" (segment(v)) "/remove" } {
                                (csrf_field(&ctx.viewer))
                                button.plain type="submit" aria-label={ "Stop letting " (v) " watch" } { "Remove" }
                            }
                        }
                    }
                }
                form method="post" action={ (page_of(&d.id)) "/viewers" } {
                    (csrf_field(&ctx.viewer))
                    (text_field("Let this user watch (username)", "username", "", error.filter(|e| e.field() == Some("username")),
                        FieldAttrs { kind: "text", required: true, autocomplete: Some("off") }))
                    button type="submit" { "Let them watch" }
                }
                p.hint { "They open it from the API or the CLI (portico desktop open " (d.id) " --owner " (d.owner) ") while you have it open." }
            }
            form method="post" action={ (page_of(&d.id)) "/extend" } {
                (csrf_field(&ctx.viewer))
                (text_field("Extend by (seconds)", "seconds", "3600", error.filter(|e| e.field() == Some("seconds")),
                    FieldAttrs { kind: "number", required: true, autocomplete: None }))
                button type="submit" { "Extend" }
            }
        }
        p { a href={ (BASE) "/desktops" } { "All my desktops" } }
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    Ok(html_response(status, page(&format!("Desktop {}", d.id), Some(&ctx.viewer), body)))
}

/// The link that opens the desktop: Guacamole's, valid once and for a minute. (A page with the
/// link, not a redirect: the console's forms post only to itself.)
async fn open(ctx: &Ctx<'_>, id: &str) -> Result<ApiResponse, ApiError> {
    match ctx.api(Method::POST, format!("/desktops/{}/connection", segment(id))).send().await {
        Ok(answer) => {
            let url = answer.body["url"].as_str().unwrap_or_default().to_owned();
            let body = html! {
                p { a.button href=(url) target="_blank" rel="noopener noreferrer" { "Open the desktop" } }
                p.hint { "The link works once, within a minute. To open the desktop again, ask for a new one." }
                p { a href=(page_of(id)) { "Back to the desktop" } }
            };
            Ok(html_response(StatusCode::OK, page("Your desktop is ready", Some(&ctx.viewer), body)))
        }
        Err(e) => show(ctx, id, Some(&shown(e)?)).await,
    }
}

async fn extend(ctx: &Ctx<'_>, id: &str) -> Result<ApiResponse, ApiError> {
    let Ok(seconds) = ctx.form().get("seconds").trim().parse::<u64>() else {
        let mut e = super::bad_request("Extend by a whole number of seconds.");
        e.field = Some("seconds".into());
        return show(ctx, id, Some(&e)).await;
    };
    let path = format!("/desktops/{}/extend", segment(id));
    match ctx.api(Method::POST, path).json(&json!({"seconds": seconds})).send().await {
        Ok(_) => Ok(guard::redirect(&page_of(id))),
        Err(e) => show(ctx, id, Some(&shown(e)?)).await,
    }
}

async fn viewer(ctx: &Ctx<'_>, id: &str, user: &str, method: Method) -> Result<ApiResponse, ApiError> {
    let path = format!("/desktops/{}/viewers/{}", segment(id), name_segment(user));
    match ctx.api(method, path).send().await {
        Ok(_) => Ok(guard::redirect(&page_of(id))),
        Err(e) => show(ctx, id, Some(&shown(e)?)).await,
    }
}

async fn stop(ctx: &Ctx<'_>, id: &str) -> Result<ApiResponse, ApiError> {
    match ctx.api(Method::DELETE, format!("/desktops/{}", segment(id))).send().await {
        Ok(_) => Ok(guard::redirect(&format!("{BASE}/desktops?stopped=1"))),
        Err(e) => list(ctx, Some(&shown(e)?)).await,
    }
}

async fn experiments(ctx: &Ctx<'_>, error: Option<&ApiError>) -> Result<ApiResponse, ApiError> {
    let (page_number, search) = (ctx.query("page"), ctx.query("search"));
    let query = guard::query(&[("page", page_number.as_str()), ("search", search.as_str())]);
    let (found, problem) = match ctx.api(Method::GET, format!("/experiments{query}")).send().await {
        Ok(answer) => (Some(answer.json::<ExperimentPage>()?), None),
        Err(e) => (None, Some(e)),
    };
    let body = html! {
        (alert(error.or(problem.as_ref())))
        form.inline method="get" action={ (BASE) "/experiments" } role="search" {
            label for="f-search" { "Search" }
            input id="f-search" name="search" type="search" value=(search);
            button type="submit" { "Search" }
        }
        @if let Some(found) = &found {
            @if found.items.is_empty() {
                p { "The user office lists no experiments for you." }
            } @else {
                (table(&["", "Proposal", "Beamline", "Subject", "Sessions", "Actions"], html! {
                    @for x in &found.items { (experiment_row(ctx, x)) }
                }))
                @if let Some(next) = found.next_page {
                    nav.pager aria-label="Pages" {
                        a rel="next" href={ (BASE) "/experiments" (guard::query(&[("page", next.to_string().as_str()), ("search", search.as_str())])) } { "More experiments" }
                    }
                }
            }
        }
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    Ok(html_response(status, page("My experiments", Some(&ctx.viewer), body)))
}

fn experiment_row(ctx: &Ctx<'_>, x: &ExperimentView) -> Markup {
    let (on, verb) = if x.favorite { ("0", "Unmark") } else { ("1", "Mark") };
    html! {
        tr {
            td { @if x.favorite { span aria-label="favourite" { "★" } } }
            td { (x.proposal_id) }
            td { (x.beam_line) }
            td { (x.subject) }
            td { (x.sessions.len()) }
            td {
                div.actions {
                    a href={ (BASE) "/desktops" (guard::query(&[("experiment", x.proposal_id.as_str())])) "#start-title" }
                        aria-label={ "Start a desktop with experiment " (x.proposal_id) } { "Start a desktop" }
                    form.inline method="post" action={ (BASE) "/experiments/" (segment(&x.proposal_id)) "/favorite" } {
                        (csrf_field(&ctx.viewer))
                        input type="hidden" name="on" value=(on);
                        button.plain type="submit" aria-label={ (verb) " experiment " (x.proposal_id) " as a favourite" } { (verb) " favourite" }
                    }
                }
            }
        }
    }
}

async fn favorite(ctx: &Ctx<'_>, proposal_id: &str) -> Result<ApiResponse, ApiError> {
    let method = if ctx.form().get("on") == "0" { Method::DELETE } else { Method::PUT };
    match ctx.api(method, format!("/experiments/{}/favorite", segment(proposal_id))).send().await {
        Ok(_) => Ok(guard::redirect(&format!("{BASE}/experiments"))),
        Err(e) => experiments(ctx, Some(&shown(e)?)).await,
    }
}
