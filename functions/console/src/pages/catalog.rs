//! The catalog: published apps as cards, filtered and paged as `GET /apps` does, and
//! launching a streaming session from an app.
//!
//! | route | what |
//! |-------|------|
//! | `GET /console/apps` (`category`, `product_area`, `status`, `next`) | the cards |
//! | `GET /console/apps/{slug}` | one app, with its launch button |
//! | `POST /console/apps/{slug}/launch` | `POST /sessions`, then the session's live page |

use http::{Method, StatusCode};
use maud::{Markup, html};
use portico_apps::AppView;
use portico_core::web::ApiResponse;
use portico_streaming::functions::AppStatus;
use serde_json::json;

use crate::Ctx;
use crate::backend::ApiError;
use crate::guard::{self, BASE, segment};
use crate::layout::{alert, csrf_field, html_response, page};
use crate::pages::{Listing, listing, pager, shown};

const STATUSES: &[&str] = &["ACTIVE", "INACTIVE", "DEPLOYING", "ERROR", "UNKNOWN"];

pub async fn route(ctx: &Ctx<'_>, rest: &[&str]) -> Result<ApiResponse, ApiError> {
    match (ctx.req.method(), rest) {
        (&Method::GET, []) => list(ctx).await,
        (&Method::GET, [slug]) => show(ctx, slug, None).await,
        (&Method::POST, [slug, "launch"]) => launch(ctx, slug).await,
        _ => Err(super::not_found()),
    }
}

async fn list(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let (category, area, status, next) =
        (ctx.query("category"), ctx.query("product_area"), ctx.query("status"), ctx.query("next"));
    let filters = [("category", category.as_str()), ("product_area", area.as_str()), ("status", status.as_str())];
    let mut pairs = filters.to_vec();
    pairs.push(("next", next.as_str()));
    let Listing { items: apps, next, error } = listing::<AppView>(ctx, "/apps", &pairs).await?;
    let body = html! {
        form.filters method="get" action={ (BASE) "/apps" } role="search" {
            div.field {
                label for="f-category" { "Category" }
                input id="f-category" name="category" value=(category);
            }
            div.field {
                label for="f-area" { "Product area" }
                input id="f-area" name="product_area" value=(area);
            }
            div.field {
                label for="f-status" { "Availability" }
                select id="f-status" name="status" {
                    option value="" selected[status.is_empty()] { "Any" }
                    @for s in STATUSES {
                        option value=(s) selected[status == *s] { (s) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        (alert(error.as_ref()))
        @if apps.is_empty() && error.is_none() {
            p { "No apps match." }
        }
        ul.cards {
            @for app in &apps {
                li.card { (card(app)) }
            }
        }
        (pager("/apps", &filters, next.as_deref(), "More apps"))
    };
    Ok(html_response(StatusCode::OK, page("Catalog", Some(&ctx.viewer), body)))
}

fn card(app: &AppView) -> Markup {
    html! {
        article.app aria-labelledby={ "app-" (app.slug) } {
            @if let Some(icon) = app.icon.as_deref().filter(|i| i.starts_with("https://") || i.starts_with("data:image/")) {
                img.icon src=(icon) alt="" width="48" height="48" loading="lazy"
                    data-initial=(app.title.chars().next().unwrap_or('?'));
            } @else {
                span.icon.placeholder aria-hidden="true" { (app.title.chars().next().unwrap_or('?')) }
            }
            h2 id={ "app-" (app.slug) } { a href={ (BASE) "/apps/" (segment(&app.slug)) } { (app.title) } }
            p.meta {
                @if !app.version.is_empty() { span { "v" (app.version) } }
                @if !app.category.is_empty() { span { (app.category) } }
                @if !app.product_area.is_empty() { span { (app.product_area) } }
            }
            p { span.status data-status=(app.status.as_str()) { (app.status.as_str()) } }
        }
    }
}

async fn show(ctx: &Ctx<'_>, slug: &str, error: Option<&ApiError>) -> Result<ApiResponse, ApiError> {
    let answer = ctx.api(Method::GET, format!("/apps/{}", segment(slug))).send().await?;
    let app: AppView = answer.json()?;
    let body = html! {
        (alert(error))
        (card(&app))
        @if !app.description.is_empty() { p.description { (app.description) } }
        dl {
            dt { "Slug" } dd { code { (app.slug) } }
            dt { "Group" } dd { (app.group) }
        }
        form method="post" action={ (BASE) "/apps/" (segment(&app.slug)) "/launch" } {
            (csrf_field(&ctx.viewer))
            button type="submit" disabled[app.status != AppStatus::Active] { "Launch a session" }
            @if app.status != AppStatus::Active { p.hint { "This app is not available for streaming right now." } }
        }
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    Ok(html_response(status, page(&app.title, Some(&ctx.viewer), body)))
}

async fn launch(ctx: &Ctx<'_>, slug: &str) -> Result<ApiResponse, ApiError> {
    match ctx.api(Method::POST, "/sessions").json(&json!({ "app": slug })).send().await {
        Ok(answer) => {
            let id = answer.body["session_id"].as_str().unwrap_or_default();
            Ok(guard::redirect(&format!("{BASE}/sessions/{}", segment(id))))
        }
        // Refused (quota, no permission, app not streamable): shown on the app's page.
        Err(e) => show(ctx, slug, Some(&shown(e)?)).await,
    }
}
