//! The administration route group (seeds 003, 004, 002). Every route is for administrators
//! only; every body refuses unknown fields, so nothing can be granted through a stray field.
//!
//! | route | answer |
//! |-------|--------|
//! | `GET /admin/users` (`limit`, `next`) | `{"items": [user...], "next"}` |
//! | `POST /admin/users` `{"username", "password"?, "admin"?}` | 201 the user |
//! | `GET /admin/users/{user}` | the user, with quota override and usage |
//! | `DELETE /admin/users/{user}` | 204 |
//! | `PUT /admin/users/{user}/admin` `{"admin": bool}` | the user |
//! | `PUT /admin/users/{user}/password` `{"password"}` | 204 |
//! | `PUT`, `DELETE /admin/users/{user}/roles/{role}` | the user |
//! | `GET`, `PUT`, `DELETE /admin/users/{user}/quota` | the override (`PUT` body: limits) |
//! | `GET /admin/roles`, `POST /admin/roles` `{"name", "description"?}` | roles / 201 the role |
//! | `GET`, `DELETE /admin/roles/{role}` | the role with permissions and quota default / 204 |
//! | `GET`, `POST /admin/roles/{role}/permissions` `{"group", "action"}` | permissions / 201 |
//! | `DELETE /admin/roles/{role}/permissions?group=&action=` | 204 |
//! | `PUT`, `DELETE /admin/roles/{role}/quota` | the role's quota default |
//!
//! Changes apply at once in this process and within `authz_cache_ttl` seconds everywhere.

use std::sync::Arc;

use http::{Method, StatusCode};
use portico_core::authz::{Action, Permission};
use portico_core::directory::{Directory, RoleRef, User, now_rfc3339, validate_username};
use portico_core::quotas::{Quotas, Resources};
use portico_core::store::Cursor;
use portico_core::web::{self, ApiRequest, ApiResponse, RouteGroup};
use portico_core::{Config, Error, Services, codes, passwords};
use serde::Deserialize;
use serde_json::{Value, json};

pub struct AdminApi {
    services: Arc<Services>,
}

impl AdminApi {
    pub fn new(services: Arc<Services>) -> Self {
        AdminApi { services }
    }
}

const LIST_CREATE: &[Method] = &[Method::GET, Method::POST];
const GET_DELETE: &[Method] = &[Method::GET, Method::DELETE];
const PUT_ONLY: &[Method] = &[Method::PUT];
const PUT_DELETE: &[Method] = &[Method::PUT, Method::DELETE];
const GET_PUT_DELETE: &[Method] = &[Method::GET, Method::PUT, Method::DELETE];
const PERMISSIONS: &[Method] = &[Method::GET, Method::POST, Method::DELETE];

#[async_trait::async_trait]
impl RouteGroup for AdminApi {
    fn name(&self) -> &'static str {
        "admin"
    }

    fn route_keys(&self) -> Vec<String> {
        ["ANY /admin/{proxy+}"].map(String::from).into()
    }

    fn config(&self) -> &Config {
        &self.services.config
    }

    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        use Method as M;
        let segments = web::segments(req);
        // Unknown paths are 404 for everyone; every known one needs an administrator.
        let known = matches!(
            segments.as_slice(),
            ["admin", "users" | "roles"]
                | ["admin", "users" | "roles", _]
                | ["admin", "users", _, "admin" | "password" | "quota"]
                | ["admin", "users", _, "roles", _]
                | ["admin", "roles", _, "permissions" | "quota"]
        );
        if !known {
            return Err(web::no_route(req));
        }
        self.services.require_admin(req).await?;
        let response = match (req.method(), segments.as_slice()) {
            (&M::GET, ["admin", "users"]) => self.list_users(req).await,
            (&M::POST, ["admin", "users"]) => self.create_user(req).await,
            (&M::GET, ["admin", "users", user]) => self.get_user(user).await,
            (&M::DELETE, ["admin", "users", user]) => self.delete_user(user).await,
            (&M::PUT, ["admin", "users", user, "admin"]) => self.set_admin(req, user).await,
            (&M::PUT, ["admin", "users", user, "password"]) => self.set_password(req, user).await,
            (&M::PUT, ["admin", "users", user, "roles", role]) => self.add_role(user, role).await,
            (&M::DELETE, ["admin", "users", user, "roles", role]) => self.remove_role(user, role).await,
            (&M::GET, ["admin", "users", user, "quota"]) => self.user_quota(user).await,
            (&M::PUT, ["admin", "users", user, "quota"]) => self.set_user_quota(req, user).await,
            (&M::DELETE, ["admin", "users", user, "quota"]) => self.clear_user_quota(user).await,
            (&M::GET, ["admin", "roles"]) => self.list_roles(req).await,
            (&M::POST, ["admin", "roles"]) => self.create_role(req).await,
            (&M::GET, ["admin", "roles", role]) => self.get_role(role).await,
            (&M::DELETE, ["admin", "roles", role]) => self.delete_role(role).await,
            (&M::GET, ["admin", "roles", role, "permissions"]) => self.permissions(role).await,
            (&M::POST, ["admin", "roles", role, "permissions"]) => self.grant(req, role).await,
            (&M::DELETE, ["admin", "roles", role, "permissions"]) => self.revoke(req, role).await,
            (&M::PUT, ["admin", "roles", role, "quota"]) => self.set_role_quota(req, role).await,
            (&M::DELETE, ["admin", "roles", role, "quota"]) => self.clear_role_quota(role).await,
            (_, ["admin", "users" | "roles"]) => Err(web::method_not_allowed(req, LIST_CREATE)),
            (_, ["admin", "users" | "roles", _]) => Err(web::method_not_allowed(req, GET_DELETE)),
            (_, ["admin", "users", _, "admin" | "password"]) => Err(web::method_not_allowed(req, PUT_ONLY)),
            (_, ["admin", "users", _, "roles", _]) => Err(web::method_not_allowed(req, PUT_DELETE)),
            (_, ["admin", "roles", _, "permissions"]) => Err(web::method_not_allowed(req, PERMISSIONS)),
            (_, ["admin", "users", _, "quota"]) => Err(web::method_not_allowed(req, GET_PUT_DELETE)),
            (_, ["admin", "roles", _, "quota"]) => Err(web::method_not_allowed(req, PUT_DELETE)),
            _ => Err(web::no_route(req)),
        };
        if response.is_ok() && req.method() != M::GET {
            self.services.identity.forget_all();
        }
        response
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    admin: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminFlag {
    admin: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRole {
    name: String,
    #[serde(default)]
    description: String,
}

/// A user as administrators see it (never the password hash).
fn user_view(user: &User) -> Value {
    json!({
        "username": user.username,
        "admin": user.admin,
        "roles": user.roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        "source": user.source,
        "created_at": user.created_at,
        "has_password": user.has_password,
    })
}

fn page<T: serde::Serialize>(items: Vec<T>, next: Option<Cursor>) -> ApiResponse {
    web::json(StatusCode::OK, &json!({"items": items, "next": next.as_ref().map(Cursor::as_str)}))
}

impl AdminApi {
    fn directory(&self) -> Directory<'_> {
        Directory::new(self.services.table.as_ref())
    }

    fn paging(&self, req: &ApiRequest) -> Result<(u32, Option<Cursor>), Error> {
        web::paging(&web::query_params(req, &["limit", "next"])?, &self.services.config)
    }

    async fn list_users(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let (limit, after) = self.paging(req)?;
        let (users, next) = self.directory().list_users(limit, after).await?;
        Ok(page(users.iter().map(user_view).collect(), next))
    }

    async fn create_user(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let body: NewUser = web::json_body(req, &self.services.config)?;
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
        self.directory().create_user(&user, hash.as_deref()).await?;
        Ok(web::json(StatusCode::CREATED, &user_view(&user)))
    }

    async fn get_user(&self, name: &str) -> Result<ApiResponse, Error> {
        validate_username(name).map_err(|_| Error::NotFound(format!("user '{name}' does not exist")))?;
        let entry = self.directory().user_entry(name).await?;
        let user = entry.user.ok_or_else(|| Error::NotFound(format!("user '{name}' does not exist")))?;
        let usage = Quotas::new(self.services.table.as_ref()).usage(name).await?;
        let mut view = user_view(&user);
        view["quota"] = json!(entry.quota);
        view["usage"] = json!(usage);
        Ok(web::json(StatusCode::OK, &view))
    }

    async fn delete_user(&self, name: &str) -> Result<ApiResponse, Error> {
        self.directory().delete_user(name).await?;
        Ok(web::empty(StatusCode::NO_CONTENT))
    }

    async fn set_admin(&self, req: &ApiRequest, name: &str) -> Result<ApiResponse, Error> {
        let body: AdminFlag = web::json_body(req, &self.services.config)?;
        let user = self
            .directory()
            .update_user(name, |u, _| {
                u.admin = body.admin;
                Ok(())
            })
            .await?;
        Ok(web::json(StatusCode::OK, &user_view(&user)))
    }

    async fn set_password(&self, req: &ApiRequest, name: &str) -> Result<ApiResponse, Error> {
        let body: NewPassword = web::json_body(req, &self.services.config)?;
        self.directory().user(name).await?;
        let hash = passwords::hash_async(body.password).await?;
        self.directory()
            .update_user(name, |_, h| {
                *h = Some(hash.clone());
                Ok(())
            })
            .await?;
        Ok(web::empty(StatusCode::NO_CONTENT))
    }

    async fn add_role(&self, name: &str, role: &str) -> Result<ApiResponse, Error> {
        let snapshot = self.directory().role(role).await?;
        let held = RoleRef { name: snapshot.role.name, id: snapshot.role.id };
        let user = self
            .directory()
            .update_user(name, |u, _| {
                u.roles.retain(|r| r.name != held.name);
                u.roles.push(held.clone());
                Ok(())
            })
            .await?;
        Ok(web::json(StatusCode::OK, &user_view(&user)))
    }

    async fn remove_role(&self, name: &str, role: &str) -> Result<ApiResponse, Error> {
        let user = self
            .directory()
            .update_user(name, |u, _| {
                let before = u.roles.len();
                u.roles.retain(|r| r.name != role);
                if u.roles.len() == before {
                    return Err(Error::NotFound(format!("user '{name}' does not hold role '{role}'")));
                }
                Ok(())
            })
            .await?;
        Ok(web::json(StatusCode::OK, &user_view(&user)))
    }

    async fn user_quota(&self, name: &str) -> Result<ApiResponse, Error> {
        self.directory().user(name).await?;
        let entry = self.directory().user_entry(name).await?;
        Ok(web::json(StatusCode::OK, &json!({"quota": entry.quota})))
    }

    async fn set_user_quota(&self, req: &ApiRequest, name: &str) -> Result<ApiResponse, Error> {
        let quota: Resources = web::json_body(req, &self.services.config)?;
        self.directory().set_user_quota(name, Some(&quota)).await?;
        Ok(web::json(StatusCode::OK, &json!({"quota": quota})))
    }

    async fn clear_user_quota(&self, name: &str) -> Result<ApiResponse, Error> {
        self.directory().set_user_quota(name, None).await?;
        Ok(web::empty(StatusCode::NO_CONTENT))
    }

    async fn list_roles(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let (limit, after) = self.paging(req)?;
        let (roles, next) = self.directory().list_roles(limit, after).await?;
        let names: Vec<Value> = roles
            .iter()
            .map(|r| json!({"name": r.name, "description": r.description, "created_at": r.created_at}))
            .collect();
        Ok(page(names, next))
    }

    async fn create_role(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let body: NewRole = web::json_body(req, &self.services.config)?;
        let role = self.directory().create_role(&body.name, &body.description).await?;
        Ok(web::json(
            StatusCode::CREATED,
            &json!({"name": role.name, "description": role.description, "created_at": role.created_at}),
        ))
    }

    async fn get_role(&self, name: &str) -> Result<ApiResponse, Error> {
        let s = self.directory().role(name).await?;
        Ok(web::json(
            StatusCode::OK,
            &json!({
                "name": s.role.name,
                "description": s.role.description,
                "created_at": s.role.created_at,
                "permissions": s.permissions,
                "quota": s.quota,
            }),
        ))
    }

    async fn delete_role(&self, name: &str) -> Result<ApiResponse, Error> {
        self.directory().delete_role(name).await?;
        Ok(web::empty(StatusCode::NO_CONTENT))
    }

    async fn permissions(&self, role: &str) -> Result<ApiResponse, Error> {
        let s = self.directory().role(role).await?;
        Ok(web::json(StatusCode::OK, &json!({"items": s.permissions})))
    }

    async fn grant(&self, req: &ApiRequest, role: &str) -> Result<ApiResponse, Error> {
        let permission: Permission = web::json_body(req, &self.services.config)?;
        self.directory().add_permission(role, &permission).await?;
        Ok(web::json(StatusCode::CREATED, &permission))
    }

    async fn revoke(&self, req: &ApiRequest, role: &str) -> Result<ApiResponse, Error> {
        let params = web::query_params(req, &["group", "action"])?;
        let param = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let action = param("action").and_then(Action::parse).ok_or_else(|| {
            Error::bad_request(codes::INVALID_QUERY, "'action' must name an action, e.g. app.publish")
        })?;
        let group = param("group").unwrap_or("").to_owned();
        self.directory().remove_permission(role, &Permission { group, action }).await?;
        Ok(web::empty(StatusCode::NO_CONTENT))
    }

    async fn set_role_quota(&self, req: &ApiRequest, role: &str) -> Result<ApiResponse, Error> {
        let quota: Resources = web::json_body(req, &self.services.config)?;
        self.directory().set_role_quota(role, Some(&quota)).await?;
        Ok(web::json(StatusCode::OK, &json!({"quota": quota})))
    }

    async fn clear_role_quota(&self, role: &str) -> Result<ApiResponse, Error> {
        self.directory().set_role_quota(role, None).await?;
        Ok(web::empty(StatusCode::NO_CONTENT))
    }
}
