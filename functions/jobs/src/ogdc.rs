//! The OGDC service's API (seed 004, `ogdc-runner` 0.3.0), under `/ogdc`, so the real
//! `ogdc-runner` CLI works unchanged with `OGDC_API_URL=<portico>/ogdc`. Shapes are OGDC's
//! (FastAPI: errors as `{"detail": ...}`); unlike OGDC 0.3.0, every route checks the token
//! and who owns the workflow.
//!
//! | route | who may call | answer |
//! |-------|--------------|--------|
//! | `POST /ogdc/token` (form `username`, `password`) | anyone | `{"access_token", "token_type": "Bearer", "utc_expiration"}`; 401 `{"detail": "Incorrect username or password."}` |
//! | `POST /ogdc/submit` `{"recipe_path", "overwrite"}` | `job.submit` on `job_default_group` | `{"message", "recipe_workflow_name"}` |
//! | `GET /ogdc/status/{name}` | the job's owner, `job.cancel` on its group, admins | `{"status", "recipe_workflow_name", "timestamp"}` (Argo's `Error` as `Failed`, so `--wait` ends) |
//! | `POST /ogdc/create_user` (form `username`, `password`) | admins | `{"message"}`; the user gets `ogdc_user_role`; 409 if taken |
//! | `GET /ogdc/output/{name}` | as `status` | `{"data_url"}`: a presigned download of a `temporary` output |
//! | `GET /ogdc/user` | any bearer | `{"current_user"}` |
//! | `GET /ogdc/version` | anyone | `{"ogdc_runner_version"}` |

use http::{HeaderValue, Method, StatusCode, header};
use portico_core::authz::Action;
use portico_core::directory::{Directory, RoleRef, User, now_rfc3339, rfc3339, validate_username};
use portico_core::jobs::service::{Job, Phase, Submission, Work};
use portico_core::jobs::workflow;
use portico_core::login::TokenRequest;
use portico_core::quotas::Resources;
use portico_core::store::now_epoch;
use portico_core::web::{self, ApiRequest, ApiResponse};
use portico_core::{Error, passwords};
use serde::Deserialize;
use serde_json::json;

use crate::JobsApi;

/// The OGDC release whose API this is.
const OGDC_VERSION: &str = "0.3.0";

/// A FastAPI-shaped error.
fn detail(status: StatusCode, message: &str) -> ApiResponse {
    web::json(status, &json!({"detail": message}))
}

/// Portico's errors in OGDC's shape: the same status, the message as `detail`.
fn as_detail(e: &Error) -> ApiResponse {
    let mut r = detail(e.status(), &e.to_string());
    if e.status() == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    recipe_path: String,
    #[serde(default)]
    overwrite: bool,
}

/// A form's `username` and `password` (other fields ignored, none repeated).
fn credentials(req: &ApiRequest) -> Result<(String, String), Error> {
    let limit = portico_core::login::MAX_FORM_BYTES;
    if req.body().len() > limit {
        return Err(Error::PayloadTooLarge { limit });
    }
    let form = TokenRequest::from_form(req.body())
        .map_err(|name| Error::bad_request(portico_core::codes::INVALID_BODY, format!("field '{name}' is repeated")))?;
    match (form.username, form.password) {
        (Some(u), Some(p)) => Ok((u, p)),
        _ => Err(Error::bad_request(portico_core::codes::INVALID_BODY, "the form needs 'username' and 'password'")),
    }
}

impl JobsApi {
    /// `/ogdc/...`: every answer, errors included, in OGDC's shapes.
    pub(crate) async fn ogdc(&self, req: &ApiRequest, path: &[&str]) -> ApiResponse {
        let answer = match (req.method(), path) {
            (&Method::POST, ["token"]) => self.ogdc_token(req).await,
            (&Method::POST, ["submit"]) => self.ogdc_submit(req).await,
            (&Method::GET, ["status", name]) => self.ogdc_status(req, name).await,
            (&Method::POST, ["create_user"]) => self.ogdc_create_user(req).await,
            (&Method::GET, ["output", name]) => self.ogdc_output(req, name).await,
            (&Method::GET, ["user"]) => self
                .services
                .principal(req)
                .await
                .map(|who| web::json(StatusCode::OK, &json!({"current_user": who.username}))),
            (&Method::GET, ["version"]) => Ok(web::json(StatusCode::OK, &json!({"ogdc_runner_version": OGDC_VERSION}))),
            _ => Ok(detail(StatusCode::NOT_FOUND, "Not Found")),
        };
        answer.unwrap_or_else(|e| as_detail(&e))
    }

    async fn ogdc_token(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let (username, password) = credentials(req)?;
        let form =
            TokenRequest { grant_type: Some("password".into()), username: Some(username), password: Some(password) };
        let issued = match self.services.grant_password(form).await {
            Ok(issued) => issued,
            // OGDC answers a refused login 401 with its own words; an unknown user alike.
            Err(Error::OAuth { error: "invalid_grant", .. }) => {
                return Ok(detail(StatusCode::UNAUTHORIZED, "Incorrect username or password."));
            }
            Err(e) => return Err(e),
        };
        // OGDC's format: RFC 3339 in UTC, `Z`, whole seconds.
        let utc_expiration = rfc3339(now_epoch() + issued.expires_in);
        let mut r = web::json(
            StatusCode::OK,
            &json!({"access_token": issued.access_token, "token_type": "Bearer", "utc_expiration": utc_expiration}),
        );
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(r)
    }

    async fn ogdc_submit(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        let group = self.services.config.job_default_group.clone();
        who.require(Action::JobSubmit, &group)?;
        let body: SubmitBody = web::json_body(req, &self.services.config)?;
        let recipe = self.fetch(&body.recipe_path).await?;
        let submission = Submission {
            owner: &who.username,
            group: &group,
            work: Work::Recipe { recipe: &recipe, overwrite: body.overwrite },
            resources: Resources::default(),
            limits: who.limits,
            idempotency: None,
        };
        let (job, _) = self.jobs()?.submit(submission).await?;
        let message = format!("Successfully submitted recipe with workflow name {}", job.workflow);
        Ok(web::json(StatusCode::OK, &json!({"message": message, "recipe_workflow_name": job.workflow})))
    }

    /// The job whose workflow is `name`, as stored, if the caller may see it. A job that does
    /// not exist (or is not theirs) is OGDC's 404; any other failure is reported as itself.
    async fn ogdc_job(&self, req: &ApiRequest, name: &str) -> Result<(Job, String), Error> {
        let who = self.services.principal(req).await?;
        let not_found = || Error::NotFound(format!("no workflow named {name}"));
        let id = workflow::job_id_of(name).ok_or_else(not_found)?;
        self.visible_stored(&who, id).await.map_err(|e| match e {
            Error::NotFound(_) => not_found(),
            other => other,
        })
    }

    async fn ogdc_status(&self, req: &ApiRequest, name: &str) -> Result<ApiResponse, Error> {
        let (stored, rev) = self.ogdc_job(req, name).await?;
        let job = self.jobs()?.refreshed(stored, rev).await?;
        // `ogdc-runner --wait` ends only on Succeeded or Failed.
        let status = match job.phase {
            Phase::Error => "Failed",
            Phase::Submitting => "Pending",
            other => other.as_str(),
        };
        let timestamp = job.finished_at.or(job.started_at).unwrap_or_default();
        Ok(web::json(StatusCode::OK, &json!({"status": status, "recipe_workflow_name": name, "timestamp": timestamp})))
    }

    async fn ogdc_output(&self, req: &ApiRequest, name: &str) -> Result<ApiResponse, Error> {
        let (stored, rev) = self.ogdc_job(req, name).await?;
        let output = self.output_of(stored, rev).await?;
        match output["url"].as_str() {
            Some(url) => Ok(web::json(StatusCode::OK, &json!({"data_url": url}))),
            None => {
                Err(Error::Conflict(format!("{name} published to the volume ({}), not a download", output["path"])))
            }
        }
    }

    async fn ogdc_create_user(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        if !who.admin {
            return Ok(detail(StatusCode::UNAUTHORIZED, "Access token must belong to admin."));
        }
        let (username, password) = credentials(req)?;
        validate_username(&username)?;
        let hash = passwords::hash_async(password).await?;
        let directory = Directory::new(self.services.table.as_ref());
        let role_name = &self.services.config.ogdc_user_role;
        let role = match role_name {
            Some(name) => directory.role_snapshot(name).await?,
            None => None,
        };
        let user = User {
            username: username.clone(),
            admin: false,
            roles: role.iter().map(|r| RoleRef { name: r.role.name.clone(), id: r.role.id.clone() }).collect(),
            source: "ogdc".into(),
            created_at: now_rfc3339(),
            has_password: true,
        };
        directory.create_user(&user, Some(&hash)).await.map_err(|e| match e {
            Error::Conflict(_) => Error::Conflict(format!("User {username} already exists.")),
            other => other,
        })?;
        let message = match (&role, role_name) {
            (Some(r), _) => format!("Successfully created user {username} (role {}).", r.role.name),
            (None, Some(name)) => format!(
                "Successfully created user {username}; no role '{name}' exists, so they cannot submit until granted one."
            ),
            (None, None) => format!("Successfully created user {username}."),
        };
        Ok(web::json(StatusCode::OK, &json!({"message": message})))
    }
}
