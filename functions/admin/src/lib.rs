//! The administration route group (seeds 003, 004, 002). Every route is for administrators
//! only (checked before the handler runs, for every route the group declares); every body
//! refuses unknown fields, so nothing can be granted through a stray field. Changes apply at
//! once in this process and within `authz_cache_ttl` seconds everywhere.

use std::sync::Arc;

use axum::extract::State;
use axum::middleware::{self, Next};
use http::{Method, StatusCode};
use portico_core::authz::{Action, Permission};
use portico_core::directory::{Directory, Role, RoleRef, User, now_rfc3339, validate_username};
use portico_core::openapi::errors::{
    Error400, Error401, Error403, Error404, Error503, GuardedReadErrors, ListErrors, WriteErrors,
};
use portico_core::openapi::{Paging, RolePath, UserPath};
use portico_core::quotas::{Quotas, Resources};
use portico_core::store::Cursor;
use portico_core::web::{self, ApiRequest, ApiResponse, NoFilters, PagedQuery, PathParams, Query, Request, Routes};
use portico_core::{Error, Services, codes, passwords};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// A user as administrators see it (never the password hash).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserView {
    pub username: String,
    pub admin: bool,
    pub roles: Vec<String>,
    pub source: String,
    pub created_at: String,
    pub has_password: bool,
}

impl From<&User> for UserView {
    fn from(user: &User) -> UserView {
        UserView {
            username: user.username.clone(),
            admin: user.admin,
            roles: user.roles.iter().map(|r| r.name.clone()).collect(),
            source: user.source.clone(),
            created_at: user.created_at.clone(),
            has_password: user.has_password,
        }
    }
}

/// `GET /admin/users/{user}`: the user with its quota override and usage.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserView,
    pub quota: Option<Resources>,
    pub usage: Resources,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    pub next: Option<String>,
}

/// `POST /admin/users`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(schema_with = portico_core::names::username_schema)]
    pub username: String,
    /// 8 to 256 characters; none for a user who signs in elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 8, max_length = 256)]
    pub password: Option<String>,
    #[serde(default)]
    pub admin: bool,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminFlag {
    pub admin: bool,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// 8 to 256 characters.
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
}

/// A quota override or role default.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuotaView {
    pub quota: Option<Resources>,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoleView {
    pub name: String,
    pub description: String,
    pub created_at: String,
}

impl From<&Role> for RoleView {
    fn from(role: &Role) -> RoleView {
        RoleView { name: role.name.clone(), description: role.description.clone(), created_at: role.created_at.clone() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolePage {
    pub items: Vec<RoleView>,
    pub next: Option<String>,
}

/// `GET /admin/roles/{role}`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoleDetail {
    #[serde(flatten)]
    pub role: RoleView,
    pub permissions: Vec<Permission>,
    pub quota: Option<Resources>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    #[schema(schema_with = portico_core::names::role_schema)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PermissionPage {
    pub items: Vec<Permission>,
}

/// The administration route group's state.
pub struct AdminApi {
    services: Arc<Services>,
}

impl AdminApi {
    /// The group, serving `services`: an administrator's token is required by every route it
    /// declares (a path it does not declare is 404 for anyone).
    pub fn routes(services: Arc<Services>) -> Routes {
        let config = services.config.clone();
        let state = Arc::new(AdminApi { services });
        let declared = declared().route_layer(middleware::from_fn_with_state(Arc::clone(&state), administrators_only));
        Routes::new("admin", &config, state, declared)
    }

    fn directory(&self) -> Directory<'_> {
        Directory::new(self.services.table.as_ref())
    }
}

/// Lets administrators through, and forgets every cached identity after a change (roles and
/// permissions may have changed).
async fn administrators_only(
    State(api): State<Arc<AdminApi>>,
    req: axum::extract::Request,
    next: Next,
) -> Result<axum::response::Response, Error> {
    let (parts, body) = req.into_parts();
    let check = ApiRequest::from_parts(parts.clone(), bytes::Bytes::new());
    api.services.require_admin(&check).await?;
    let changes = parts.method != Method::GET;
    let response = next.run(axum::extract::Request::from_parts(parts, body)).await;
    if changes && response.status().is_success() {
        api.services.identity.forget_all();
    }
    Ok(response)
}

/// Every route of the group, each declared on its handler.
pub fn declared() -> OpenApiRouter<Arc<AdminApi>> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, delete_user))
        .routes(routes!(set_admin))
        .routes(routes!(set_password))
        .routes(routes!(add_role, remove_role))
        .routes(routes!(user_quota, set_user_quota, clear_user_quota))
        .routes(routes!(list_roles, create_role))
        .routes(routes!(get_role, delete_role))
        .routes(routes!(permissions, grant, revoke))
        .routes(routes!(set_role_quota, clear_role_quota))
}

type Api = State<Arc<AdminApi>>;
type Answer = Result<ApiResponse, Error>;

/// List users
#[utoipa::path(get, path = "/admin/users", tag = "admin", params(Paging), responses(
    (status = 200, description = "A page of users", body = UserPage),
        ListErrors,
    ))]
async fn list_users(State(api): Api, query: Result<PagedQuery<NoFilters>, Error>) -> Answer {
    let (limit, after) = query?.paging(&api.services.config)?;
    let (users, next) = api.directory().list_users(limit, after).await?;
    let page = UserPage { items: users.iter().map(UserView::from).collect(), next: next.as_ref().map(cursor) };
    Ok(web::json(StatusCode::OK, &page))
}

fn cursor(c: &Cursor) -> String {
    c.as_str().to_owned()
}

/// Create a user
#[utoipa::path(post, path = "/admin/users", tag = "admin", request_body = NewUser, responses(
    (status = 201, description = "The user", body = UserView),
        WriteErrors,
    ))]
async fn create_user(State(api): Api, Request(req): Request) -> Answer {
    let body: NewUser = web::json_body(&req, &api.services.config)?;
    validate_username(&body.username)?;
    let hash = match body.password {
        Some(p) => Some(passwords::hash_async(p).await?),
        None => None,
    };
    let user = User {
        username: body.username,
        admin: body.admin,
        roles: vec![],
        source: "admin".into(),
        created_at: now_rfc3339(),
        has_password: hash.is_some(),
    };
    api.directory().create_user(&user, hash.as_deref()).await?;
    Ok(web::json(StatusCode::CREATED, &UserView::from(&user)))
}

/// Get a user
#[utoipa::path(get, path = "/admin/users/{user}", tag = "admin", params(UserPath), responses(
    (status = 200, description = "The user, quota override and usage", body = UserDetail),
        GuardedReadErrors,
    ))]
async fn get_user(State(api): Api, PathParams(name): PathParams<String>) -> Answer {
    validate_username(&name).map_err(|_| Error::NotFound(format!("user '{name}' does not exist")))?;
    let entry = api.directory().user_entry(&name).await?;
    let user = entry.user.ok_or_else(|| Error::NotFound(format!("user '{name}' does not exist")))?;
    let usage = Quotas::new(api.services.table.as_ref()).usage(&name).await?;
    Ok(web::json(StatusCode::OK, &UserDetail { user: UserView::from(&user), quota: entry.quota, usage }))
}

/// Delete a user
#[utoipa::path(delete, path = "/admin/users/{user}", tag = "admin", params(UserPath), responses(
    (status = 204, description = "Deleted"),
        GuardedReadErrors,
    ))]
async fn delete_user(State(api): Api, PathParams(name): PathParams<String>) -> Answer {
    api.directory().delete_user(&name).await?;
    Ok(web::empty(StatusCode::NO_CONTENT))
}

/// Make or unmake an administrator
#[utoipa::path(put, path = "/admin/users/{user}/admin", tag = "admin", params(UserPath), request_body = AdminFlag,
    responses(
        (status = 200, description = "The user", body = UserView),
        WriteErrors,
    ),
)]
async fn set_admin(State(api): Api, PathParams(name): PathParams<String>, Request(req): Request) -> Answer {
    let body: AdminFlag = web::json_body(&req, &api.services.config)?;
    let user = api
        .directory()
        .update_user(&name, |u, _| {
            u.admin = body.admin;
            Ok(())
        })
        .await?;
    Ok(web::json(StatusCode::OK, &UserView::from(&user)))
}

/// Set a password
#[utoipa::path(put, path = "/admin/users/{user}/password", tag = "admin", params(UserPath), request_body = NewPassword,
    responses(
        (status = 204, description = "Set"),
        WriteErrors,
    ),
)]
async fn set_password(State(api): Api, PathParams(name): PathParams<String>, Request(req): Request) -> Answer {
    let body: NewPassword = web::json_body(&req, &api.services.config)?;
    api.directory().user(&name).await?;
    let hash = passwords::hash_async(body.password).await?;
    api.directory()
        .update_user(&name, |_, h| {
            *h = Some(hash.clone());
            Ok(())
        })
        .await?;
    Ok(web::empty(StatusCode::NO_CONTENT))
}

/// Grant a role
#[utoipa::path(put, path = "/admin/users/{user}/roles/{role}", tag = "admin", params(UserPath, RolePath), responses(
    (status = 200, description = "The user", body = UserView),
        GuardedReadErrors,
    ))]
async fn add_role(State(api): Api, PathParams((name, role)): PathParams<(String, String)>) -> Answer {
    let snapshot = api.directory().role(&role).await?;
    let held = RoleRef { name: snapshot.role.name, id: snapshot.role.id };
    let user = api
        .directory()
        .update_user(&name, |u, _| {
            u.roles.retain(|r| r.name != held.name);
            u.roles.push(held.clone());
            Ok(())
        })
        .await?;
    Ok(web::json(StatusCode::OK, &UserView::from(&user)))
}

/// Take a role
#[utoipa::path(delete, path = "/admin/users/{user}/roles/{role}", tag = "admin", params(UserPath, RolePath), responses(
    (status = 200, description = "The user", body = UserView),
        GuardedReadErrors,
    ))]
async fn remove_role(State(api): Api, PathParams((name, role)): PathParams<(String, String)>) -> Answer {
    let user = api
        .directory()
        .update_user(&name, |u, _| {
            let before = u.roles.len();
            u.roles.retain(|r| r.name != role);
            if u.roles.len() == before {
                return Err(Error::NotFound(format!("user '{name}' does not hold role '{role}'")));
            }
            Ok(())
        })
        .await?;
    Ok(web::json(StatusCode::OK, &UserView::from(&user)))
}

/// A user's quota override
#[utoipa::path(get, path = "/admin/users/{user}/quota", tag = "admin", params(UserPath), responses(
    (status = 200, description = "The override", body = QuotaView),
        GuardedReadErrors,
    ))]
async fn user_quota(State(api): Api, PathParams(name): PathParams<String>) -> Answer {
    api.directory().user(&name).await?;
    let entry = api.directory().user_entry(&name).await?;
    Ok(web::json(StatusCode::OK, &QuotaView { quota: entry.quota }))
}

/// Set a user's quota override
#[utoipa::path(put, path = "/admin/users/{user}/quota", tag = "admin", params(UserPath), request_body = Resources,
    responses(
        (status = 200, description = "The override", body = QuotaView),
        WriteErrors,
    ),
)]
async fn set_user_quota(State(api): Api, PathParams(name): PathParams<String>, Request(req): Request) -> Answer {
    let quota: Resources = web::json_body(&req, &api.services.config)?;
    api.directory().set_user_quota(&name, Some(&quota)).await?;
    Ok(web::json(StatusCode::OK, &QuotaView { quota: Some(quota) }))
}

/// Clear a user's quota override
#[utoipa::path(delete, path = "/admin/users/{user}/quota", tag = "admin", params(UserPath), responses(
    (status = 204, description = "Cleared"),
        GuardedReadErrors,
    ))]
async fn clear_user_quota(State(api): Api, PathParams(name): PathParams<String>) -> Answer {
    api.directory().set_user_quota(&name, None).await?;
    Ok(web::empty(StatusCode::NO_CONTENT))
}

/// List roles
#[utoipa::path(get, path = "/admin/roles", tag = "admin", params(Paging), responses(
    (status = 200, description = "A page of roles", body = RolePage),
        ListErrors,
    ))]
async fn list_roles(State(api): Api, query: Result<PagedQuery<NoFilters>, Error>) -> Answer {
    let (limit, after) = query?.paging(&api.services.config)?;
    let (roles, next) = api.directory().list_roles(limit, after).await?;
    let page = RolePage { items: roles.iter().map(RoleView::from).collect(), next: next.as_ref().map(cursor) };
    Ok(web::json(StatusCode::OK, &page))
}

/// Create a role
#[utoipa::path(post, path = "/admin/roles", tag = "admin", request_body = NewRole, responses(
    (status = 201, description = "The role", body = RoleView),
        WriteErrors,
    ))]
async fn create_role(State(api): Api, Request(req): Request) -> Answer {
    let body: NewRole = web::json_body(&req, &api.services.config)?;
    let role = api.directory().create_role(&body.name, &body.description).await?;
    Ok(web::json(StatusCode::CREATED, &RoleView::from(&role)))
}

/// Get a role
#[utoipa::path(get, path = "/admin/roles/{role}", tag = "admin", params(RolePath), responses(
    (status = 200, description = "The role, its permissions and quota default", body = RoleDetail),
        GuardedReadErrors,
    ))]
async fn get_role(State(api): Api, PathParams(name): PathParams<String>) -> Answer {
    let s = api.directory().role(&name).await?;
    let detail = RoleDetail { role: RoleView::from(&s.role), permissions: s.permissions, quota: s.quota };
    Ok(web::json(StatusCode::OK, &detail))
}

/// Delete a role
///
/// A recreated role is a new role: former holders do not regain it.
#[utoipa::path(delete, path = "/admin/roles/{role}", tag = "admin", params(RolePath), responses(
    (status = 204, description = "Deleted"),
        GuardedReadErrors,
    ))]
async fn delete_role(State(api): Api, PathParams(name): PathParams<String>) -> Answer {
    api.directory().delete_role(&name).await?;
    Ok(web::empty(StatusCode::NO_CONTENT))
}

/// A role's permissions
#[utoipa::path(get, path = "/admin/roles/{role}/permissions", tag = "admin", params(RolePath), responses(
    (status = 200, description = "The permissions", body = PermissionPage),
        GuardedReadErrors,
    ))]
async fn permissions(State(api): Api, PathParams(role): PathParams<String>) -> Answer {
    let s = api.directory().role(&role).await?;
    Ok(web::json(StatusCode::OK, &PermissionPage { items: s.permissions }))
}

/// Grant a permission
#[utoipa::path(post, path = "/admin/roles/{role}/permissions", tag = "admin", params(RolePath), request_body = Permission,
    responses(
        (status = 201, description = "The permission", body = Permission),
        WriteErrors,
    ),
)]
async fn grant(State(api): Api, PathParams(role): PathParams<String>, Request(req): Request) -> Answer {
    let permission: Permission = web::json_body(&req, &api.services.config)?;
    api.directory().add_permission(&role, &permission).await?;
    Ok(web::json(StatusCode::CREATED, &permission))
}

/// The permission `DELETE /admin/roles/{role}/permissions` revokes.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PermissionQuery {
    /// The permission's group (default `""`).
    group: Option<String>,
    /// The permission's action.
    #[param(value_type = Action, inline, required = true)]
    action: Option<String>,
}

/// Revoke a permission
#[utoipa::path(delete, path = "/admin/roles/{role}/permissions", tag = "admin",
    params(
        RolePath,
        PermissionQuery,
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, response = Error400), (status = 401, response = Error401), (status = 403, response = Error403),
        (status = 404, response = Error404), (status = 503, response = Error503),
    ),
)]
async fn revoke(
    State(api): Api,
    PathParams(role): PathParams<String>,
    query: Result<Query<PermissionQuery>, Error>,
) -> Answer {
    let Query(PermissionQuery { group, action }) = query?;
    let action = action
        .as_deref()
        .and_then(Action::parse)
        .ok_or_else(|| Error::bad_request(codes::INVALID_QUERY, "'action' must name an action, e.g. app.publish"))?;
    let group = group.unwrap_or_default();
    api.directory().remove_permission(&role, &Permission { group, action }).await?;
    Ok(web::empty(StatusCode::NO_CONTENT))
}

/// Set a role's quota default
#[utoipa::path(put, path = "/admin/roles/{role}/quota", tag = "admin", params(RolePath), request_body = Resources,
    responses(
        (status = 200, description = "The default", body = QuotaView),
        WriteErrors,
    ),
)]
async fn set_role_quota(State(api): Api, PathParams(role): PathParams<String>, Request(req): Request) -> Answer {
    let quota: Resources = web::json_body(&req, &api.services.config)?;
    api.directory().set_role_quota(&role, Some(&quota)).await?;
    Ok(web::json(StatusCode::OK, &QuotaView { quota: Some(quota) }))
}

/// Clear a role's quota default
#[utoipa::path(delete, path = "/admin/roles/{role}/quota", tag = "admin", params(RolePath), responses(
    (status = 204, description = "Cleared"),
        GuardedReadErrors,
    ))]
async fn clear_role_quota(State(api): Api, PathParams(role): PathParams<String>) -> Answer {
    api.directory().set_role_quota(&role, None).await?;
    Ok(web::empty(StatusCode::NO_CONTENT))
}
