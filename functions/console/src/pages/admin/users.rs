//! Users: the directory as a table with a create form, and one user's page: administrator
//! rights, roles, quota override and deletion, each one call to `/admin/users/...`.

use http::{Method, StatusCode};
use maud::html;
use portico_admin::{RoleView, UserView};
use portico_core::web::ApiResponse;
use serde_json::{Value, json};

use super::{
    Listing, QUOTA_FIELDS, done, done_notice, listing, name_segment, pager, quota_body, quota_form, quota_values,
    resources, shown,
};
use crate::Ctx;
use crate::backend::ApiError;
use crate::guard::BASE;
use crate::layout::{FieldAttrs, alert, csrf_field, form_alert, html_response, page, table, text_field};

fn user_path(user: &str) -> String {
    format!("{BASE}/admin/users/{}", name_segment(user))
}

fn api_path(user: &str) -> String {
    format!("/admin/users/{}", name_segment(user))
}

/// `GET /console/admin/users`; after a refused create, the form again with what was typed.
pub async fn list(ctx: &Ctx<'_>, error: Option<&ApiError>) -> Result<ApiResponse, ApiError> {
    let next = ctx.query("next");
    let Listing { items: users, next, error: list_error } =
        listing::<UserView>(ctx, "/admin/users", &[("next", next.as_str())]).await?;
    let typed = error.map(|_| ctx.form());
    let typed_name = typed.as_ref().map_or("", |f| f.get("username"));
    let typed_admin = typed.as_ref().is_some_and(|f| f.checked("admin"));
    let body = html! {
        (done_notice(ctx))
        (alert(list_error.as_ref()))
        (table(&["Username", "Administrator", "Roles", "Source", "Password", "Created"], html! {
            @for u in &users {
                tr {
                    td { a href=(user_path(&u.username)) { (u.username) } }
                    td { @if u.admin { "yes" } @else { "no" } }
                    td { (u.roles.join(", ")) }
                    td { (u.source) }
                    td { @if u.has_password { "set" } @else { "none" } }
                    td { (u.created_at) }
                }
            }
        }))
        (pager("/admin/users", &[], next.as_deref(), "More users"))
        h2 id="new-user" { "Create a user" }
        (form_alert(error, &["username", "password"]))
        form.card.narrow method="post" action={ (BASE) "/admin/users" } aria-labelledby="new-user" {
            (csrf_field(&ctx.viewer))
            (text_field("Username", "username", typed_name, error,
                FieldAttrs { autocomplete: Some("off"), ..FieldAttrs::required() }))
            (text_field("Password (empty: the user signs in through the organization only)", "password", "", error,
                FieldAttrs { kind: "password", autocomplete: Some("new-password"), required: false }))
            div.field {
                label for="f-admin" { input id="f-admin" type="checkbox" name="admin" value="true" checked[typed_admin]; " Administrator" }
            }
            button type="submit" { "Create user" }
        }
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    Ok(html_response(status, page("Users", Some(&ctx.viewer), body)))
}

/// `POST /console/admin/users`.
pub async fn create(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let form = ctx.form();
    let username = form.get("username").trim().to_owned();
    let mut body = json!({"username": username, "admin": form.checked("admin")});
    if !form.get("password").is_empty() {
        body["password"] = form.get("password").into();
    }
    match ctx.api(Method::POST, "/admin/users").json(&body).send().await {
        Ok(_) => Ok(done(&user_path(&username), "created")),
        Err(e) => list(ctx, Some(&shown(e)?)).await,
    }
}

/// `GET /console/admin/users/{user}`; after a refused change, with the API's words (beside
/// the quota field it names, with what was typed there).
pub async fn show(ctx: &Ctx<'_>, user: &str, error: Option<&ApiError>) -> Result<ApiResponse, ApiError> {
    let answer = ctx.api(Method::GET, api_path(user)).send().await?;
    let u: UserView = answer.json()?;
    let view = answer.body;
    // Names for the grant field's suggestions; without them the field still takes any name.
    let roles: Vec<String> = match ctx.api(Method::GET, "/admin/roles?limit=1000").send().await {
        Ok(a) => {
            a.json::<Listing<RoleView>>().map(|p| p.items.into_iter().map(|r| r.name).collect()).unwrap_or_default()
        }
        Err(_) => Vec::new(),
    };
    let quota = &view["quota"];
    let about_quota = error.is_some_and(|e| QUOTA_FIELDS.iter().any(|(n, _)| e.field() == Some(n)));
    let typed = about_quota.then(|| ctx.form());
    let role_error = error.filter(|e| e.field() == Some("role"));
    let path = user_path(&u.username);
    let body = html! {
        (done_notice(ctx))
        (form_alert(error, &["role", "sessions", "jobs", "desktops", "cpu", "memory", "storage"]))
        dl {
            dt { "Administrator" } dd { @if u.admin { "yes" } @else { "no" } }
            dt { "Source" } dd { (u.source) }
            dt { "Password" } dd { @if u.has_password { "set" } @else { "none" } }
            dt { "Created" } dd { (u.created_at) }
        }
        form.inline method="post" action={ (path) "/admin" } {
            (csrf_field(&ctx.viewer))
            @if u.admin {
                input type="hidden" name="admin" value="false";
                button.danger type="submit" data-confirm={ "Take administrator rights from " (u.username) "?" } {
                    "Remove administrator rights"
                }
            } @else {
                input type="hidden" name="admin" value="true";
                button type="submit" data-confirm={ "Make " (u.username) " an administrator?" } { "Make administrator" }
            }
        }

        h2 id="roles" { "Roles" }
        @if u.roles.is_empty() {
            p { "No roles." }
        } @else {
            div.table-wrap {
                table aria-labelledby="roles" {
                    thead { tr { th scope="col" { "Role" } th scope="col" { "Action" } } }
                    tbody {
                        @for r in &u.roles {
                            tr {
                                td { a href={ (BASE) "/admin/roles/" (name_segment(r)) } { (r) } }
                                td {
                                    form.inline method="post" action={ (path) "/roles/" (name_segment(r)) "/revoke" } {
                                        (csrf_field(&ctx.viewer))
                                        button.danger type="submit" aria-label={ "Revoke " (r) }
                                            data-confirm={ "Revoke role " (r) " from " (u.username) "?" } { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        form.filters method="post" action={ (path) "/roles" } {
            (csrf_field(&ctx.viewer))
            div.field {
                label for="f-role" { "Role to grant" }
                input id="f-role" name="role" list="role-names" required autocomplete="off"
                    aria-invalid=[role_error.map(|_| "true")] aria-describedby=[role_error.map(|_| "f-role-error")];
                @if let Some(e) = role_error {
                    p.field-error id="f-role-error" { (e.message) }
                }
            }
            datalist id="role-names" { @for r in &roles { option value=(r) {} } }
            button type="submit" { "Grant role" }
        }

        h2 { "Quota override" }
        @if quota.is_null() {
            p.hint { "None: the user's roles' defaults or the configured defaults apply." }
        }
        (quota_form(ctx, &format!("{path}/quota"), quota, &quota_values(typed.as_ref(), quota), error))
        h3 { "In use now" }
        (resources(&view["usage"]))

        h2 { "Delete" }
        form method="post" action={ (path) "/delete" } {
            (csrf_field(&ctx.viewer))
            button.danger type="submit" data-confirm={ "Delete the user " (u.username) "? This cannot be undone." } {
                "Delete user"
            }
        }
        p { a href={ (BASE) "/admin/users" } { "All users" } }
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    Ok(html_response(status, page(&format!("User {}", u.username), Some(&ctx.viewer), body)))
}

/// The user's page after `result`: a notice on success, else the API's refusal on it.
async fn after(
    ctx: &Ctx<'_>,
    user: &str,
    result: Result<crate::backend::Answer, ApiError>,
    code: &'static str,
) -> Result<ApiResponse, ApiError> {
    super::after(ctx, user, &user_path(user), result, code, show).await
}

pub async fn set_admin(ctx: &Ctx<'_>, user: &str) -> Result<ApiResponse, ApiError> {
    let admin = ctx.form().get("admin") == "true";
    let result = ctx.api(Method::PUT, format!("{}/admin", api_path(user))).json(&json!({"admin": admin})).send().await;
    after(ctx, user, result, "admin").await
}

pub async fn grant(ctx: &Ctx<'_>, user: &str) -> Result<ApiResponse, ApiError> {
    let role = ctx.form().get("role").trim().to_owned();
    // The API's own check first: an empty name would change the path it is sent to.
    if let Err(e) = portico_core::directory::validate_role_name(&role) {
        return show(ctx, user, Some(&super::super::api_error(&e))).await;
    }
    let result = ctx.api(Method::PUT, format!("{}/roles/{}", api_path(user), name_segment(&role))).send().await;
    after(ctx, user, result, "granted").await
}

pub async fn revoke(ctx: &Ctx<'_>, user: &str, role: &str) -> Result<ApiResponse, ApiError> {
    let result = ctx.api(Method::DELETE, format!("{}/roles/{}", api_path(user), name_segment(role))).send().await;
    after(ctx, user, result, "revoked").await
}

pub async fn set_quota(ctx: &Ctx<'_>, user: &str) -> Result<ApiResponse, ApiError> {
    let body: Value = quota_body(&ctx.form());
    let result = ctx.api(Method::PUT, format!("{}/quota", api_path(user))).json(&body).send().await;
    after(ctx, user, result, "quota").await
}

pub async fn clear_quota(ctx: &Ctx<'_>, user: &str) -> Result<ApiResponse, ApiError> {
    let result = ctx.api(Method::DELETE, format!("{}/quota", api_path(user))).send().await;
    after(ctx, user, result, "quota-cleared").await
}

pub async fn delete(ctx: &Ctx<'_>, user: &str) -> Result<ApiResponse, ApiError> {
    match ctx.api(Method::DELETE, api_path(user)).send().await {
        Ok(_) => Ok(done(&format!("{BASE}/admin/users"), "deleted")),
        Err(e) => show(ctx, user, Some(&shown(e)?)).await,
    }
}
