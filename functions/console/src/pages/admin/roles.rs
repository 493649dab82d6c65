//! Roles: the list with a create form, and one role's page: its permissions (an action on a
//! group's resources), its quota default and its deletion, each one call to `/admin/roles/...`.

use http::{Method, StatusCode};
use maud::{Markup, html};
use portico_admin::{RoleDetail, RoleView};
use portico_core::authz::Action;
use portico_core::web::ApiResponse;

use super::{
    Listing, QUOTA_FIELDS, done, done_notice, listing, name_segment, pager, quota_body, quota_form, quota_values, shown,
};
use crate::Ctx;
use crate::backend::ApiError;
use crate::guard::{self, BASE};
use crate::layout::{FieldAttrs, alert, csrf_field, form_alert, html_response, page, table, text_field};

fn role_path(role: &str) -> String {
    format!("{BASE}/admin/roles/{}", name_segment(role))
}

fn api_path(role: &str) -> String {
    format!("/admin/roles/{}", name_segment(role))
}

/// A permission's group in words: `""` and `*` mean something particular.
fn group_label(group: &str) -> Markup {
    html! {
        @match group {
            "" => span.hint { "(no group)" },
            "*" => { code { "*" } " " span.hint { "(every group)" } },
            g => code { (g) },
        }
    }
}

/// `GET /console/admin/roles`; after a refused create, the form again with what was typed.
pub async fn list(ctx: &Ctx<'_>, error: Option<&ApiError>) -> Result<ApiResponse, ApiError> {
    let next = ctx.query("next");
    let Listing { items: roles, next, error: list_error } =
        listing::<RoleView>(ctx, "/admin/roles", &[("next", next.as_str())]).await?;
    let typed = error.map(|_| ctx.form());
    let typed = |name: &str| typed.as_ref().map_or(String::new(), |f| f.get(name).to_owned());
    let body = html! {
        (done_notice(ctx))
        (alert(list_error.as_ref()))
        @if roles.is_empty() && list_error.is_none() {
            p { "No roles yet." }
        } @else {
            (table(&["Role", "Description", "Created"], html! {
                @for r in &roles {
                    tr {
                        td { a href=(role_path(&r.name)) { (r.name) } }
                        td { (r.description) }
                        td { (r.created_at) }
                    }
                }
            }))
        }
        (pager("/admin/roles", &[], next.as_deref(), "More roles"))
        h2 id="new-role" { "Create a role" }
        (form_alert(error, &["role", "description"]))
        form.card.narrow method="post" action={ (BASE) "/admin/roles" } aria-labelledby="new-role" {
            (csrf_field(&ctx.viewer))
            (text_field("Name (lowercase letters, digits, - and _)", "role", &typed("role"), error,
                FieldAttrs { autocomplete: Some("off"), ..FieldAttrs::required() }))
            (text_field("Description", "description", &typed("description"), error,
                FieldAttrs { autocomplete: Some("off"), ..FieldAttrs::default() }))
            button type="submit" { "Create role" }
        }
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    Ok(html_response(status, page("Roles", Some(&ctx.viewer), body)))
}

/// `POST /console/admin/roles`.
pub async fn create(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let form = ctx.form();
    let name = form.get("role").trim().to_owned();
    let body = serde_json::json!({"name": name, "description": form.get("description")});
    match ctx.api(Method::POST, "/admin/roles").json(&body).send().await {
        Ok(_) => Ok(done(&role_path(&name), "created")),
        Err(e) => list(ctx, Some(&shown(e)?)).await,
    }
}

/// `GET /console/admin/roles/{role}`; after a refused change, with the API's words beside
/// the field it names (and what was typed there).
pub async fn show(ctx: &Ctx<'_>, role: &str, error: Option<&ApiError>) -> Result<ApiResponse, ApiError> {
    let answer = ctx.api(Method::GET, api_path(role)).send().await?;
    let RoleDetail { role: r, permissions: grants, .. } = answer.json()?;
    let quota = &answer.body["quota"];
    let typed_form = error.map(|_| ctx.form());
    let about_quota = error.is_some_and(|e| QUOTA_FIELDS.iter().any(|(n, _)| e.field() == Some(n)));
    let typed_group = match (&typed_form, error.and_then(ApiError::field)) {
        (Some(f), Some("group" | "action")) => f.get("group").to_owned(),
        _ => String::new(),
    };
    let action_error = error.filter(|e| e.field() == Some("action"));
    let typed_action = typed_form.as_ref().map_or(String::new(), |f| f.get("action").to_owned());
    let path = role_path(&r.name);
    let body = html! {
        (done_notice(ctx))
        (form_alert(error, &["group", "action", "sessions", "jobs", "desktops", "cpu", "memory", "storage"]))
        @if !r.description.is_empty() { p { (r.description) } }
        p.hint { "Created " (r.created_at) }

        h2 id="permissions" { "Permissions" }
        @if grants.is_empty() {
            p { "No permissions: holders of this role may do nothing through it." }
        } @else {
            div.table-wrap {
                table aria-labelledby="permissions" {
                    thead { tr { th scope="col" { "Action" } th scope="col" { "Group" } th scope="col" { "Remove" } } }
                    tbody {
                        @for g in &grants {
                            tr {
                                td { code { (g.action.as_str()) } }
                                td { (group_label(&g.group)) }
                                td {
                                    form.inline method="post" action={ (path) "/permissions/remove" } {
                                        (csrf_field(&ctx.viewer))
                                        input type="hidden" name="group" value=(g.group);
                                        input type="hidden" name="action" value=(g.action.as_str());
                                        button.danger type="submit" aria-label={ "Remove " (g.action.as_str()) " on " (g.group) }
                                            data-confirm={ "Remove " (g.action.as_str()) " from " (r.name) "?" } { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        form.filters method="post" action={ (path) "/permissions" } aria-label="Add a permission" {
            (csrf_field(&ctx.viewer))
            div.field {
                label for="f-action" { "Action" }
                select id="f-action" name="action" aria-invalid=[action_error.map(|_| "true")]
                    aria-describedby=[action_error.map(|_| "f-action-error")] {
                    @for a in Action::ALL { option value=(a.as_str()) selected[typed_action == a.as_str()] { (a.as_str()) } }
                }
                @if let Some(e) = action_error { p.field-error id="f-action-error" { (e.message) } }
            }
            (text_field("Group (empty: apps without a group; * every group)", "group", &typed_group, error,
                FieldAttrs { autocomplete: Some("off"), ..FieldAttrs::default() }))
            button type="submit" { "Add permission" }
        }

        h2 { "Quota default" }
        @if quota.is_null() {
            p.hint { "None: the configured defaults apply to holders without an override." }
        }
        (quota_form(ctx, &format!("{path}/quota"), quota,
            &quota_values(typed_form.as_ref().filter(|_| about_quota), quota), error))

        h2 { "Delete" }
        form method="post" action={ (path) "/delete" } {
            (csrf_field(&ctx.viewer))
            button.danger type="submit"
                data-confirm={ "Delete the role " (r.name) " with its permissions? Its holders lose them." } {
                "Delete role"
            }
        }
        p { a href={ (BASE) "/admin/roles" } { "All roles" } }
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    Ok(html_response(status, page(&format!("Role {}", r.name), Some(&ctx.viewer), body)))
}

/// The role's page after `result`: a notice on success, else the API's refusal on it.
async fn after(
    ctx: &Ctx<'_>,
    role: &str,
    result: Result<crate::backend::Answer, ApiError>,
    code: &'static str,
) -> Result<ApiResponse, ApiError> {
    super::after(ctx, role, &role_path(role), result, code, show).await
}

pub async fn add_permission(ctx: &Ctx<'_>, role: &str) -> Result<ApiResponse, ApiError> {
    let form = ctx.form();
    let body = serde_json::json!({"group": form.get("group").trim(), "action": form.get("action")});
    let result = ctx.api(Method::POST, format!("{}/permissions", api_path(role))).json(&body).send().await;
    after(ctx, role, result, "permission-added").await
}

pub async fn remove_permission(ctx: &Ctx<'_>, role: &str) -> Result<ApiResponse, ApiError> {
    let form = ctx.form();
    let query = guard::query(&[("group", form.get("group")), ("action", form.get("action"))]);
    let result = ctx.api(Method::DELETE, format!("{}/permissions{query}", api_path(role))).send().await;
    after(ctx, role, result, "permission-removed").await
}

pub async fn set_quota(ctx: &Ctx<'_>, role: &str) -> Result<ApiResponse, ApiError> {
    let body = quota_body(&ctx.form());
    let result = ctx.api(Method::PUT, format!("{}/quota", api_path(role))).json(&body).send().await;
    after(ctx, role, result, "quota").await
}

pub async fn clear_quota(ctx: &Ctx<'_>, role: &str) -> Result<ApiResponse, ApiError> {
    let result = ctx.api(Method::DELETE, format!("{}/quota", api_path(role))).send().await;
    after(ctx, role, result, "quota-cleared").await
}

pub async fn delete(ctx: &Ctx<'_>, role: &str) -> Result<ApiResponse, ApiError> {
    match ctx.api(Method::DELETE, api_path(role)).send().await {
        Ok(_) => Ok(done(&format!("{BASE}/admin/roles"), "deleted")),
        Err(e) => show(ctx, role, Some(&shown(e)?)).await,
    }
}
