//! Desktop environments (the registry of what users may start) and every live desktop, with a
//! button to stop one.

use http::{Method, StatusCode};
use maud::{Markup, html};
use portico_core::web::ApiResponse;
use portico_desktops::desktops::DesktopView;
use portico_desktops::environments::Environment;
use serde_json::{Map, Value};

use super::{Listing, done, done_notice, listing, name_segment, pager, shown};
use crate::backend::ApiError;
use crate::guard::BASE;
use crate::layout::{FieldAttrs, alert, csrf_field, form_alert, html_response, page, table, text_field, when};
use crate::{Ctx, Form};

/// The environment form's text fields: (API field, label, input kind).
const FIELDS: [(&str, &str, &str); 11] = [
    ("name", "Name (lowercase letters, digits, '-')", "text"),
    ("title", "Title", "text"),
    ("description", "Description", "text"),
    ("image", "Container image (kubernetes)", "text"),
    ("port", "Desktop port (kubernetes)", "number"),
    ("link", "Link (link)", "url"),
    ("cpu", "CPU per desktop (millicores)", "number"),
    ("memory", "Memory per desktop (MiB)", "number"),
    ("storage", "Scratch storage per desktop (GiB)", "number"),
    ("max_lifetime", "Longest life (seconds)", "number"),
    ("group", "Authorization group (desktop.start on it)", "text"),
];
const NUMBERS: [&str; 5] = ["port", "cpu", "memory", "storage", "max_lifetime"];

pub async fn environments(
    ctx: &Ctx<'_>,
    form: Option<&Form>,
    error: Option<&ApiError>,
) -> Result<ApiResponse, ApiError> {
    let next = ctx.query("next");
    let Listing { items, next, error: listing_error } =
        listing::<Environment>(ctx, "/environments", &[("next", next.as_str())]).await?;
    let value = |name: &str| form.map(|f| f.get(name).to_owned()).unwrap_or_default();
    let body = html! {
        (done_notice(ctx))
        (alert(listing_error.as_ref()))
        @if !items.is_empty() {
            (table(&["Name", "Title", "Kind", "Image or link", "Group", "Delete"], html! {
                @for e in &items {
                    tr {
                        td { (e.name) }
                        td { (e.title) }
                        td { (format!("{:?}", e.kind).to_lowercase()) }
                        td { (e.image.as_deref().or(e.link.as_deref()).unwrap_or("")) }
                        td { (e.group) }
                        td {
                            form.inline method="post" action={ (BASE) "/admin/environments/" (name_segment(&e.name)) "/delete" } {
                                (csrf_field(&ctx.viewer))
                                button.danger type="submit" data-confirm={ "Delete environment " (e.name) "? Running desktops keep running." }
                                    aria-label={ "Delete environment " (e.name) } { "Delete" }
                            }
                        }
                    }
                }
            }))
        }
        (pager("/admin/environments", &[], next.as_deref(), "More environments"))
        section.card aria-labelledby="env-title" {
            h2 id="env-title" { "Add or replace an environment" }
            form method="post" action={ (BASE) "/admin/environments" } {
                (csrf_field(&ctx.viewer))
                (form_alert(error, &FIELDS.map(|(name, _, _)| name)))
                div.field {
                    label for="f-kind" { "Kind" }
                    select id="f-kind" name="kind" {
                        option value="kubernetes" selected[value("kind") != "link"] { "kubernetes: a container desktop" }
                        option value="link" selected[value("kind") == "link"] { "link: a static link" }
                    }
                }
                div.field {
                    label for="f-protocol" { "Protocol (kubernetes)" }
                    select id="f-protocol" name="protocol" {
                        option value="vnc" selected[value("protocol") != "rdp"] { "VNC" }
                        option value="rdp" selected[value("protocol") == "rdp"] { "RDP" }
                    }
                }
                @for (name, label, kind) in FIELDS {
                    (text_field(label, name, &value(name), error, FieldAttrs { kind, required: name == "name" || name == "title", autocomplete: Some("off") }))
                }
                button type="submit" { "Save environment" }
            }
        }
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    Ok(html_response(status, page("Desktop environments", Some(&ctx.viewer), body)))
}

/// The form as `PUT /environments/{name}`'s body: numbers as numbers (else as typed, for the
/// API to name), empty fields left out, the fields of the other kind dropped.
fn environment_body(form: &Form) -> Value {
    let link = form.get("kind") == "link";
    let mut body = Map::new();
    body.insert("kind".into(), Value::from(form.get("kind")));
    if !link {
        body.insert("protocol".into(), Value::from(form.get("protocol")));
    }
    for (name, _, _) in FIELDS {
        let typed = form.get(name).trim();
        let other_kind = if link { ["image", "port"].contains(&name) } else { name == "link" };
        if typed.is_empty() || name == "name" || other_kind {
            continue;
        }
        let value = match NUMBERS.contains(&name) {
            true => typed.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(typed)),
            false => Value::from(typed),
        };
        body.insert(name.into(), value);
    }
    Value::Object(body)
}

pub async fn save_environment(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let form = ctx.form();
    let name = form.get("name").trim().to_owned();
    if name.is_empty() {
        let mut e = crate::pages::bad_request("An environment needs a name.");
        e.field = Some("name".into());
        return environments(ctx, Some(&form), Some(&e)).await;
    }
    let path = format!("/environments/{}", name_segment(&name));
    match ctx.api(Method::PUT, path).json(&environment_body(&form)).send().await {
        Ok(_) => Ok(done(&format!("{BASE}/admin/environments"), "saved")),
        Err(e) => environments(ctx, Some(&form), Some(&shown(e)?)).await,
    }
}

pub async fn delete_environment(ctx: &Ctx<'_>, name: &str) -> Result<ApiResponse, ApiError> {
    match ctx.api(Method::DELETE, format!("/environments/{}", name_segment(name))).send().await {
        Ok(_) => Ok(done(&format!("{BASE}/admin/environments"), "deleted")),
        Err(e) => environments(ctx, None, Some(&shown(e)?)).await,
    }
}

pub async fn every_desktop(ctx: &Ctx<'_>, error: Option<&ApiError>) -> Result<ApiResponse, ApiError> {
    let next = ctx.query("next");
    let Listing { items, next, error: listing_error } =
        listing::<DesktopView>(ctx, "/desktops", &[("all", "true"), ("next", next.as_str())]).await?;
    let body = html! {
        (done_notice(ctx))
        (alert(error.or(listing_error.as_ref())))
        @if items.is_empty() && listing_error.is_none() {
            p { "No desktop is running." }
        } @else if !items.is_empty() {
            (table(&["Desktop", "Owner", "Environment", "Experiment", "State", "Ends", "Stop"], html! {
                @for d in &items { (desktop_row(ctx, d)) }
            }))
        }
        (pager("/admin/desktops", &[("all", "true")], next.as_deref(), "More desktops"))
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    Ok(html_response(status, page("All desktops", Some(&ctx.viewer), body)))
}

fn desktop_row(ctx: &Ctx<'_>, d: &DesktopView) -> Markup {
    html! {
        tr {
            td { code { (d.id) } }
            td { (d.owner) }
            td { (d.environment) }
            td { (d.experiment.as_deref().unwrap_or("—")) }
            td { span.status { (format!("{:?}", d.state).to_lowercase()) } }
            td { (when(&d.ends_at)) }
            td {
                form.inline method="post" action={ (BASE) "/admin/desktops/" (name_segment(&d.owner)) "/" (d.id) "/stop" } {
                    (csrf_field(&ctx.viewer))
                    button.danger type="submit" data-confirm={ "Stop " (d.owner) "'s desktop " (d.id) "?" }
                        aria-label={ "Stop " (d.owner) "'s desktop " (d.id) } { "Stop" }
                }
            }
        }
    }
}

pub async fn stop_desktop(ctx: &Ctx<'_>, owner: &str, id: &str) -> Result<ApiResponse, ApiError> {
    let path = format!("/desktops/{}{}", name_segment(id), crate::guard::query(&[("owner", owner)]));
    match ctx.api(Method::DELETE, path).send().await {
        Ok(_) => Ok(done(&format!("{BASE}/admin/desktops"), "stopped")),
        Err(e) => every_desktop(ctx, Some(&shown(e)?)).await,
    }
}
