//! My streaming sessions: the list, the live view (the relay, joined by `console.js` with a
//! fresh ticket), rejoining an idle session and stopping one.
//!
//! | route | what |
//! |-------|------|
//! | `GET /console/sessions` (`next`) | my sessions, as `GET /sessions` pages them |
//! | `GET /console/sessions/{id}` | the session's facts and its live connection |
//! | `POST /console/sessions/{id}/ticket` | `POST /sessions/{id}/tickets`, as JSON for the script |
//! | `POST /console/sessions/{id}/stop` | `DELETE /sessions/{id}`, then my sessions |

use http::{Method, StatusCode};
use maud::{Markup, html};
use portico_core::web::{self, ApiResponse};
use portico_streaming::{SessionState, SessionView};
use serde_json::{Value, json};

use crate::Ctx;
use crate::backend::ApiError;
use crate::guard::{self, BASE, segment};
use crate::layout::{alert, csrf_field, html_response, notice, page, readable_time, when};
use crate::pages::{Listing, listing, pager, shown};

/// Whether session `s` has not ended.
pub(crate) fn is_live(s: &SessionView) -> bool {
    s.state != SessionState::Stopped
}

/// The console page of session `s`.
fn page_of(s: &SessionView) -> String {
    format!("{BASE}/sessions/{}", segment(&s.id))
}

pub async fn route(ctx: &Ctx<'_>, rest: &[&str]) -> Result<ApiResponse, ApiError> {
    match (ctx.req.method(), rest) {
        (&Method::GET, []) => list(ctx, None).await,
        (&Method::GET, [id]) => live(ctx, id).await,
        (&Method::POST, [id, "ticket"]) => Ok(ticket(ctx, id).await),
        (&Method::POST, [id, "stop"]) => stop(ctx, id).await,
        _ => Err(super::not_found()),
    }
}

async fn list(ctx: &Ctx<'_>, error: Option<&ApiError>) -> Result<ApiResponse, ApiError> {
    let next = ctx.query("next");
    let listed = listing::<SessionView>(ctx, "/sessions", &[("next", next.as_str())]).await?;
    let Listing { items: sessions, next, error: listing_error } = listed;
    let stopped = (ctx.query("stopped") == "1").then_some("The session has ended.");
    let body = html! {
        (notice(stopped))
        (alert(error.or(listing_error.as_ref())))
        @if sessions.is_empty() && listing_error.is_none() {
            p { "You have no sessions. Launch one from the " a href={ (BASE) "/apps" } { "catalog" } "." }
        } @else if !sessions.is_empty() {
            div.table-wrap {
                table {
                    caption.hint { "Oldest first; ended sessions stay listed for a while." }
                    thead { tr { th scope="col" { "App" } th scope="col" { "State" } th scope="col" { "Started" } th scope="col" { "Actions" } } }
                    tbody {
                        @for s in &sessions { (row(ctx, s)) }
                    }
                }
            }
        }
        (pager("/sessions", &[], next.as_deref(), "More sessions"))
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    Ok(html_response(status, page("My sessions", Some(&ctx.viewer), body)))
}

fn row(ctx: &Ctx<'_>, s: &SessionView) -> Markup {
    let started = readable_time(&s.created_at);
    html! {
        tr {
            td { a href={ (BASE) "/apps/" (segment(&s.app)) } { (s.app) } }
            td {
                span.status data-status=(s.state.as_str()) { (s.state.as_str()) }
                @if let Some(reason) = &s.ended_reason { " " span.hint { "(" (reason) ")" } }
            }
            td { time datetime=(s.created_at) { (started) } }
            td {
                div.actions {
                    @if is_live(s) {
                        // The same page either way: it takes a fresh ticket and joins.
                        @let verb = if s.state == SessionState::Idle { "Rejoin" } else { "Open" };
                        a href=(page_of(s)) aria-label={ (verb) " the " (s.app) " session started " (started) } { (verb) }
                        (stop_form(ctx, s, &started))
                    } @else {
                        a href=(page_of(s)) aria-label={ "Details of the " (s.app) " session started " (started) } { "Details" }
                    }
                }
            }
        }
    }
}

fn stop_form(ctx: &Ctx<'_>, s: &SessionView, started: &str) -> Markup {
    html! {
        form.inline method="post" action={ (page_of(s)) "/stop" } {
            (csrf_field(&ctx.viewer))
            button.danger type="submit" data-confirm={ "Stop the " (s.app) " session? It cannot be resumed." }
                aria-label={ "Stop the " (s.app) " session started " (started) } { "Stop" }
        }
    }
}

async fn live(ctx: &Ctx<'_>, id: &str) -> Result<ApiResponse, ApiError> {
    let s: SessionView = ctx.api(Method::GET, format!("/sessions/{}", segment(id))).send().await?.json()?;
    // Administrators and session managers may look and stop; only the owner may join.
    let mine = s.owner == ctx.viewer.username;
    let body = html! {
        dl {
            dt { "App" } dd { a href={ (BASE) "/apps/" (segment(&s.app)) } { (s.app) } }
            @if !mine { dt { "Owner" } dd { (s.owner) } }
            dt { "State when loaded" } dd { span.status data-status=(s.state.as_str()) { (s.state.as_str()) } }
            dt { "Started" } dd { (when(&s.created_at)) }
            @if is_live(&s) {
                dt { "Ends by" } dd { (when(&s.ends_at)) }
            }
            @if let Some(reason) = &s.ended_reason { dt { "Ended because" } dd { code { (reason) } } }
        }
        @if is_live(&s) && mine {
            @if s.client_connected {
                p.hint { "This session is open elsewhere (another tab or device); close it there to join here." }
            }
            (relay_block(ctx, &s))
        } @else if is_live(&s) {
            p.hint { "Only the session's owner can join it." }
        } @else {
            p { "This session has ended. " a href={ (BASE) "/apps/" (segment(&s.app)) } { "Launch a new one" } "." }
        }
        @if is_live(&s) {
            form method="post" action={ (page_of(&s)) "/stop" } {
                (csrf_field(&ctx.viewer))
                button.danger type="submit" data-confirm="Stop this session? It cannot be resumed." { "Stop the session" }
            }
        }
        p { a href={ (BASE) "/sessions" } { "All my sessions" } }
    };
    Ok(html_response(StatusCode::OK, page(&format!("Session of {}", s.app), Some(&ctx.viewer), body)))
}

/// What `console.js` brings to life: it takes a ticket, joins the relay, and shows the
/// connection's state and every frame.
fn relay_block(ctx: &Ctx<'_>, s: &SessionView) -> Markup {
    let autoconnect = !s.client_connected;
    html! {
        section.card data-relay data-ticket-url={ (page_of(s)) "/ticket" } data-autoconnect[autoconnect]
            aria-labelledby="live-title" {
            h2 id="live-title" { "Live connection" }
            div.actions {
                span { "Connection: " }
                strong.status data-state role="status" { "not connected" }
                button.plain type="button" data-connect { "Connect" }
            }
            noscript { p.alert { "The live connection needs JavaScript." } }
            // Disabled until the script has joined the relay, so it never posts without it.
            form data-signal method="post" action=(page_of(s)) {
                (csrf_field(&ctx.viewer))
                fieldset disabled {
                    legend { "Send a signal to the app" }
                    div.field {
                        label for="f-signal" { "Signal (JSON, or plain text)" }
                        input id="f-signal" name="signal" required autocomplete="off" aria-describedby="f-signal-hint";
                        p.hint id="f-signal-hint" { "Sent as {\"type\": \"signal\", \"data\": …}." }
                    }
                    button type="submit" { "Send" }
                }
            }
            h3 id="log-title" { "Messages" }
            ol.log data-log aria-live="polite" aria-labelledby="log-title" {}
        }
    }
}

/// A fresh client ticket, as JSON for the script: `{"ws_url", "ticket"}`, or the API's
/// refusal as `{"code", "message"}` with its status (never an HTML page: the script reads it).
async fn ticket(ctx: &Ctx<'_>, id: &str) -> ApiResponse {
    match ctx.api(Method::POST, format!("/sessions/{}/tickets", segment(id))).send().await {
        Ok(answer) => {
            let Some(ticket) = answer.body["ticket"].as_str() else {
                let message = "the API answered without a ticket";
                return web::json(StatusCode::BAD_GATEWAY, &json!({"code": "internal", "message": message}));
            };
            // The relay's address alone: the script adds the ticket (the API's URL carries it).
            let api_url = answer.body["ws_url"].as_str().and_then(|u| u.split('?').next());
            let ws_url = api_url.unwrap_or(&ctx.config().relay_url);
            let mut body = json!({"ws_url": ws_url, "ticket": ticket});
            if let Some(ttl) = answer.body.get("expires_in").filter(|v| !v.is_null()) {
                body["expires_in"] = Value::clone(ttl);
            }
            web::json(StatusCode::OK, &body)
        }
        Err(e) => e.json_response(),
    }
}

async fn stop(ctx: &Ctx<'_>, id: &str) -> Result<ApiResponse, ApiError> {
    match ctx.api(Method::DELETE, format!("/sessions/{}", segment(id))).send().await {
        Ok(_) => Ok(guard::redirect(&format!("{BASE}/sessions?stopped=1"))),
        // Refused (gone, not yours): shown above the list, in the API's words.
        Err(e) => list(ctx, Some(&shown(e)?)).await,
    }
}
