//! Who I am to Portico (`GET /auth/me`): roles, what they let me do, and my quota with what
//! I use of it.

use http::{Method, StatusCode};
use maud::{Markup, html};
use portico_auth::Me;
use portico_core::quotas::Resources;
use portico_core::web::ApiResponse;

use crate::Ctx;
use crate::backend::ApiError;
use crate::layout::{html_response, page, table};

/// A resource's amount by its field name.
fn amount(resources: &Resources, name: &str) -> i64 {
    resources.fields().into_iter().find(|(n, _)| *n == name).map_or(0, |(_, v)| v)
}

/// Each resource: its field, its label and its unit.
const RESOURCES: [(&str, &str, &str); 5] = [
    ("sessions", "Streaming sessions", "sessions"),
    ("jobs", "Active jobs", "jobs"),
    ("cpu", "CPU", "millicores"),
    ("memory", "Memory", "MiB"),
    ("storage", "Storage", "GiB"),
];

pub async fn show(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let me: Me = ctx.api(Method::GET, "/auth/me").send().await?.json()?;
    let body = html! {
        dl {
            dt { "Username" } dd { (me.username) }
            dt { "Administrator" } dd { @if me.admin { "Yes" } @else { "No" } }
            dt { "Signed in with" } dd { (source_name(me.source.as_str())) }
            @if !me.groups.is_empty() { dt { "Identity provider groups" } dd { (me.groups.join(", ")) } }
        }
        section aria-labelledby="roles-title" {
            h2 id="roles-title" { "Roles" }
            @if me.roles.is_empty() {
                p { "You hold no roles." }
            } @else {
                ul { @for r in &me.roles { li { (r) } } }
            }
        }
        section aria-labelledby="permissions-title" {
            h2 id="permissions-title" { "Permissions" }
            @if me.admin {
                p.hint { "As an administrator you may do anything, on every group, whatever your roles grant." }
            }
            @if me.permissions.is_empty() {
                p { "Your roles grant no permissions." }
            } @else {
                (table(&["Authorization group", "Action"], html! {
                    @for p in &me.permissions {
                        tr { td { (group_name(&p.group)) } td { code { (p.action.as_str()) } } }
                    }
                }))
            }
        }
        section aria-labelledby="quota-title" {
            h2 id="quota-title" { "Quota and usage" }
            @for (name, label, unit) in RESOURCES {
                (usage_meter(name, label, unit, amount(&me.usage, name), amount(&me.quota, name)))
            }
        }
    };
    Ok(html_response(StatusCode::OK, page("Profile", Some(&ctx.viewer), body)))
}

/// A labelled meter of `used` out of `limit`, with the figures also as text.
fn usage_meter(name: &str, label: &str, unit: &str, used: i64, limit: i64) -> Markup {
    let id = format!("q-{name}");
    // Warn from 80 % on (the browser colours the meter; no inline style needed).
    let high = limit - limit / 5;
    html! {
        div.field {
            label for=(id) { (label) }
            meter id=(id) min="0" max=(limit) value=(used.min(limit)) high=(high) optimum="0"
                aria-describedby={ (id) "-text" } { (used) " of " (limit) }
            span.hint id={ (id) "-text" } { (used) " of " (limit) " " (unit) " in use" }
        }
    }
}

fn group_name(group: &str) -> Markup {
    match group {
        "" => html! { "the default group " span.hint { "(apps without a group)" } },
        "*" => html! { "every group " code { "*" } },
        g => html! { code { (g) } },
    }
}

fn source_name(source: &str) -> &str {
    match source {
        "portico" => "a Portico password or token",
        "oidc" => "single sign-on (OIDC)",
        "web" => "a web token",
        other => other,
    }
}
