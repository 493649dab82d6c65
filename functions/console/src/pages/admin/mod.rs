//! The administrators' pages: the apps catalog, users, roles, and every session and job. Each
//! route refuses non-administrators before anything else, and each action is one call to the
//! API as the signed-in user, so the API authorizes it again.
//!
//! | route | what |
//! |-------|------|
//! | `GET /console/admin` | the sections |
//! | `GET /console/admin/apps` (`next`); `GET .../apps/new`; `POST .../apps` | apps; the new-app form; `PUT /apps/{slug}` with `If-None-Match: *` |
//! | `GET`, `POST /console/admin/apps/{slug}`; `POST .../{slug}/delete` | the edit form; `PUT` / `DELETE /apps/{slug}` with `If-Match` |
//! | `GET`, `POST /console/admin/users` | users (paged); create one |
//! | `GET /console/admin/users/{u}`; `POST .../{u}/admin`, `.../roles`, `.../roles/{r}/revoke`, `.../quota`, `.../quota/clear`, `.../delete` | a user and its changes |
//! | `GET`, `POST /console/admin/roles` | roles (paged); create one |
//! | `GET /console/admin/roles/{r}`; `POST .../{r}/permissions`, `.../permissions/remove`, `.../quota`, `.../quota/clear`, `.../delete` | a role and its changes |
//! | `GET /console/admin/sessions`; `POST .../sessions/{id}/terminate` | every session, filtered; end one |
//! | `GET /console/admin/jobs`; `POST .../jobs/{id}/cancel` | every job, filtered; cancel one |
//! | `GET`, `POST /console/admin/environments`; `POST .../environments/{name}/delete` | desktop environments; add or replace one; delete one |
//! | `GET /console/admin/desktops`; `POST .../desktops/{owner}/{id}/stop` | every live desktop; stop one |

mod activity;
mod apps;
mod desktops;
mod roles;
mod users;

use http::{Method, StatusCode};
use maud::{Markup, html};
use portico_core::web::ApiResponse;
use serde_json::{Map, Value};

use super::{Listing, listing, pager, shown};
use crate::backend::ApiError;
use crate::guard::{self, BASE, decode, name_segment};
use crate::layout::{FieldAttrs, csrf_field, html_response, notice, page, text_field};
use crate::{Ctx, Form};

pub async fn route(ctx: &Ctx<'_>, rest: &[&str]) -> Result<ApiResponse, ApiError> {
    if !ctx.viewer.admin {
        return Err(super::forbidden("These pages are for administrators."));
    }
    use Method as M;
    let decoded: Vec<String> = rest.iter().map(|s| decode(s)).collect();
    let rest: Vec<&str> = decoded.iter().map(String::as_str).collect();
    match (ctx.req.method(), rest.as_slice()) {
        (&M::GET, []) => Ok(index(ctx)),
        (&M::GET, ["apps"]) => apps::list(ctx).await,
        (&M::GET, ["apps", "new"]) => Ok(apps::new_form(ctx)),
        (&M::POST, ["apps"]) => apps::create(ctx).await,
        (&M::GET, ["apps", slug]) => apps::edit(ctx, slug, None).await,
        (&M::POST, ["apps", slug]) => apps::save(ctx, slug).await,
        (&M::POST, ["apps", slug, "delete"]) => apps::delete(ctx, slug).await,
        (&M::GET, ["users"]) => users::list(ctx, None).await,
        (&M::POST, ["users"]) => users::create(ctx).await,
        (&M::GET, ["users", user]) => users::show(ctx, user, None).await,
        (&M::POST, ["users", user, "admin"]) => users::set_admin(ctx, user).await,
        (&M::POST, ["users", user, "roles"]) => users::grant(ctx, user).await,
        (&M::POST, ["users", user, "roles", role, "revoke"]) => users::revoke(ctx, user, role).await,
        (&M::POST, ["users", user, "quota"]) => users::set_quota(ctx, user).await,
        (&M::POST, ["users", user, "quota", "clear"]) => users::clear_quota(ctx, user).await,
        (&M::POST, ["users", user, "delete"]) => users::delete(ctx, user).await,
        (&M::GET, ["roles"]) => roles::list(ctx, None).await,
        (&M::POST, ["roles"]) => roles::create(ctx).await,
        (&M::GET, ["roles", role]) => roles::show(ctx, role, None).await,
        (&M::POST, ["roles", role, "permissions"]) => roles::add_permission(ctx, role).await,
        (&M::POST, ["roles", role, "permissions", "remove"]) => roles::remove_permission(ctx, role).await,
        (&M::POST, ["roles", role, "quota"]) => roles::set_quota(ctx, role).await,
        (&M::POST, ["roles", role, "quota", "clear"]) => roles::clear_quota(ctx, role).await,
        (&M::POST, ["roles", role, "delete"]) => roles::delete(ctx, role).await,
        (&M::GET, ["sessions"]) => activity::SESSIONS.list(ctx).await,
        (&M::POST, ["sessions", id, "terminate"]) => activity::SESSIONS.end(ctx, id).await,
        (&M::GET, ["jobs"]) => activity::JOBS.list(ctx).await,
        (&M::POST, ["jobs", id, "cancel"]) => activity::JOBS.end(ctx, id).await,
        (&M::GET, ["environments"]) => desktops::environments(ctx, None, None).await,
        (&M::POST, ["environments"]) => desktops::save_environment(ctx).await,
        (&M::POST, ["environments", name, "delete"]) => desktops::delete_environment(ctx, name).await,
        (&M::GET, ["desktops"]) => desktops::every_desktop(ctx, None).await,
        (&M::POST, ["desktops", owner, id, "stop"]) => desktops::stop_desktop(ctx, owner, id).await,
        _ => Err(super::not_found()),
    }
}

fn index(ctx: &Ctx<'_>) -> ApiResponse {
    let sections = [
        ("apps", "Apps", "Publish, edit and remove catalog apps."),
        ("users", "Users", "Create users, make administrators, grant roles, set quota overrides."),
        ("roles", "Roles", "Roles, their permissions per group and their quota defaults."),
        ("sessions", "All sessions", "Every streaming session; end one."),
        ("jobs", "All jobs", "Every job; cancel an unfinished one."),
        ("environments", "Desktop environments", "What users may start as remote desktops."),
        ("desktops", "All desktops", "Every running desktop; stop one."),
    ];
    let body = html! {
        ul.cards {
            @for (path, title, what) in sections {
                li.card {
                    h2 { a href={ (BASE) "/admin/" (path) } { (title) } }
                    p.hint { (what) }
                }
            }
        }
    };
    html_response(StatusCode::OK, page("Administration", Some(&ctx.viewer), body))
}

/// `303` to `path` with a `done` code (one of [`done_notice`]'s) that the next page shows.
fn done(path: &str, code: &'static str) -> ApiResponse {
    let separator = if path.contains('?') { '&' } else { '?' };
    guard::redirect(&format!("{path}{separator}done={code}"))
}

/// The page of `name` at `path` after `result`: a `done` notice on success, else `show` with
/// the API's refusal on it.
async fn after(
    ctx: &Ctx<'_>,
    name: &str,
    path: &str,
    result: Result<crate::backend::Answer, ApiError>,
    code: &'static str,
    show: impl AsyncFnOnce(&Ctx<'_>, &str, Option<&ApiError>) -> Result<ApiResponse, ApiError>,
) -> Result<ApiResponse, ApiError> {
    match result {
        Ok(_) => Ok(done(path, code)),
        Err(e) => show(ctx, name, Some(&shown(e)?)).await,
    }
}

/// The notice for the `done` code in the query (fixed words: the query chooses, never says).
fn done_notice(ctx: &Ctx<'_>) -> Markup {
    let text = match ctx.query("done").as_str() {
        "created" => Some("Created."),
        "saved" => Some("Saved."),
        "published" => Some("Published: the app is in the catalog."),
        "deleted" => Some("Deleted."),
        "admin" => Some("Administrator rights changed."),
        "granted" => Some("Role granted."),
        "revoked" => Some("Role revoked."),
        "quota" => Some("Quota saved."),
        "quota-cleared" => Some("Quota removed."),
        "permission-added" => Some("Permission added."),
        "permission-removed" => Some("Permission removed."),
        "terminated" => Some("Session ended."),
        "cancelled" => Some("Job cancelled."),
        "stopped" => Some("Desktop stopped."),
        _ => None,
    };
    notice(text)
}

/// The quota resources, as the API names them, with their labels.
const QUOTA_FIELDS: [(&str, &str); 6] = [
    ("sessions", "Concurrent sessions"),
    ("jobs", "Active jobs"),
    ("desktops", "Running desktops"),
    ("cpu", "CPU (millicores)"),
    ("memory", "Memory (MiB)"),
    ("storage", "Storage (GiB)"),
];

/// The body of a quota `PUT`: numbers as numbers; anything else is sent as typed, so the API
/// refuses it naming the field.
fn quota_body(form: &Form) -> Value {
    let mut body = Map::new();
    for (name, _) in QUOTA_FIELDS {
        let typed = form.get(name).trim();
        let value = typed.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(typed));
        body.insert(name.to_owned(), value);
    }
    Value::Object(body)
}

/// The values a quota form shows: what was typed, else the current limits, else empty.
fn quota_values(form: Option<&Form>, current: &Value) -> Vec<String> {
    QUOTA_FIELDS
        .iter()
        .map(|(name, _)| match form {
            Some(f) => f.get(name).to_owned(),
            None => current.get(name).and_then(Value::as_i64).map(|n| n.to_string()).unwrap_or_default(),
        })
        .collect()
}

/// A quota form (`current` is the stored limits, or `null`), with the API's error beside the
/// field it names, and a button to remove the setting when there is one.
fn quota_form(ctx: &Ctx<'_>, action: &str, current: &Value, values: &[String], error: Option<&ApiError>) -> Markup {
    let attrs = FieldAttrs { kind: "number", required: true, autocomplete: Some("off") };
    html! {
        form.filters method="post" action=(action) {
            (csrf_field(&ctx.viewer))
            @for ((name, label), value) in QUOTA_FIELDS.iter().zip(values) {
                (text_field(label, name, value, error, attrs))
            }
            button type="submit" { "Save quota" }
        }
        @if !current.is_null() {
            form.inline method="post" action={ (action) "/clear" } {
                (csrf_field(&ctx.viewer))
                button.danger type="submit" data-confirm="Remove this quota setting?" { "Remove quota setting" }
            }
        }
    }
}

/// The resources of a quota or usage object, as a list.
fn resources(value: &Value) -> Markup {
    html! {
        dl {
            @for (name, label) in QUOTA_FIELDS {
                dt { (label) }
                dd { (value.get(name).and_then(Value::as_i64).unwrap_or(0)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_decode_and_names_keep_their_at_sign() {
        assert_eq!(decode("ana%40lab.example"), "ana@lab.example");
        assert_eq!(decode("bad%zz%4"), "bad%zz%4");
        assert_eq!(name_segment("ana@lab.example"), "ana@lab.example");
        assert_eq!(name_segment("a/b"), "a%2Fb");
    }

    #[test]
    fn quota_bodies_keep_what_is_not_a_number_for_the_api_to_name() {
        let form = Form(vec![("sessions".into(), " 3 ".into()), ("jobs".into(), "many".into())]);
        let body = quota_body(&form);
        assert_eq!(body["sessions"], 3);
        assert_eq!(body["jobs"], "many");
        assert_eq!(body["cpu"], "");
    }
}
