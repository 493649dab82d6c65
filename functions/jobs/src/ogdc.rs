//! The OGDC service's API (OGDC, `ogdc-runner` 0.3.0), under `/ogdc`, so the real
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

use std::sync::Arc;

use axum::extract::State;
use http::{HeaderValue, StatusCode, header};
use portico_core::authz::Action;
use portico_core::directory::{Directory, RoleRef, User, now_rfc3339, rfc3339, validate_username};
use portico_core::login::TokenRequest;
use portico_core::quotas::Resources;
use portico_core::store::now_epoch;
use portico_core::web::{self, ApiRequest, ApiResponse, DetailError, PathParams, Request, as_detail, detail};
use portico_core::{Error, passwords};
use portico_jobs::service::{Job, Phase, Submission, Work};
use portico_jobs::workflow;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::JobsApi;

/// Where the OGDC routes are.
pub(crate) const PREFIX: &str = "/ogdc/";

/// The OGDC release whose API this is.
const OGDC_VERSION: &str = "0.3.0";

/// OGDC's refusals (`{"detail"}`) for the statuses a route answers, as its declaration's
/// responses; 503 with `Retry-After`. (The token route declares its own, which also brings the
/// `DetailError` schema into the document.)
macro_rules! refusals {
    ($($name:ident = [$($status:literal),*];)*) => {$(
        struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
                [$($status),*].into_iter().map(|s: u16| (s.to_string(), refusal(s).into())).collect()
            }
        }
    )*};
}

refusals! {
    SubmitRefusals = [400, 401, 403, 409, 413, 415, 502, 503, 504];
    ReadRefusals = [401, 404, 503];
    CreateRefusals = [400, 401, 409, 503];
    OutputRefusals = [401, 404, 409, 503];
}

/// One refusal's response: `DetailError` as JSON, `Retry-After` on a 503.
fn refusal(status: u16) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder, header::HeaderBuilder};
    let body = ContentBuilder::new().schema(Some(Ref::from_schema_name("DetailError"))).build();
    let response = ResponseBuilder::new().description("Refused").content("application/json", body);
    let response = match status {
        503 => {
            let header = HeaderBuilder::new()
                .schema(<u64 as utoipa::PartialSchema>::schema())
                .description(Some("Seconds to wait before trying again."))
                .build();
            response.header("Retry-After", header)
        }
        _ => response,
    };
    response.build()
}

/// `POST /ogdc/token`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OgdcToken {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    pub utc_expiration: String,
}

/// `POST /ogdc/submit`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OgdcSubmit)]
pub struct SubmitBody {
    /// `github://org:repo@ref/path`.
    pub recipe_path: String,
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OgdcSubmitted {
    pub message: String,
    pub recipe_workflow_name: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OgdcStatus {
    pub status: String,
    pub recipe_workflow_name: String,
    pub timestamp: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OgdcMessage {
    pub message: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OgdcOutput {
    pub data_url: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OgdcUser {
    pub current_user: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OgdcVersion {
    #[schema(example = "0.3.0")]
    pub ogdc_runner_version: String,
}

/// The form of `POST /ogdc/token`: a user's `username` and `password` (other fields ignored).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // A schema: the form is read by `credentials`.
struct OgdcLogin {
    username: String,
    password: String,
}

/// The form of `POST /ogdc/create_user` (other fields ignored).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // A schema: the form is read by `credentials`.
struct OgdcNewUser {
    #[schema(schema_with = portico_core::names::username_schema)]
    username: String,
    /// 8 to 256 characters.
    #[schema(min_length = 8, max_length = 256)]
    password: String,
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

/// The OGDC routes, each declared on its handler; every answer, errors included, in OGDC's
/// shapes.
pub(crate) fn declared() -> OpenApiRouter<Arc<JobsApi>> {
    OpenApiRouter::new()
        .routes(routes!(token))
        .routes(routes!(submit))
        .routes(routes!(status))
        .routes(routes!(create_user))
        .routes(routes!(output))
        .routes(routes!(user))
        .routes(routes!(version))
}

type Api = State<Arc<JobsApi>>;

fn shaped(answer: Result<ApiResponse, Error>) -> ApiResponse {
    answer.unwrap_or_else(|e| as_detail(&e))
}

/// Sign in (OGDC)
#[utoipa::path(post, path = "/ogdc/token", tag = "ogdc", security(()),
    request_body(content = OgdcLogin, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A token", body = OgdcToken),
        (status = 400, description = "Refused", body = DetailError),
        (status = 401, description = "Refused", body = DetailError),
        (status = 503, description = "Refused", body = DetailError, headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
    ),
)]
async fn token(State(api): Api, Request(req): Request) -> ApiResponse {
    shaped(api.ogdc_token(&req).await)
}

/// Submit a recipe (OGDC)
///
/// Needs `job.submit` on `job_default_group`.
#[utoipa::path(post, path = "/ogdc/submit", tag = "ogdc", request_body = SubmitBody, responses(
    (status = 200, description = "Submitted", body = OgdcSubmitted),
    SubmitRefusals,
))]
async fn submit(State(api): Api, Request(req): Request) -> ApiResponse {
    shaped(api.ogdc_submit(&req).await)
}

/// A workflow's status (OGDC)
#[utoipa::path(get, path = "/ogdc/status/{name}", tag = "ogdc", params(("name" = String, Path)), responses(
    (status = 200, description = "The status", body = OgdcStatus),
    ReadRefusals,
))]
async fn status(State(api): Api, PathParams(name): PathParams<String>, Request(req): Request) -> ApiResponse {
    shaped(api.ogdc_status(&req, &name).await)
}

/// Create a user (OGDC)
///
/// Administrators; the user gets `ogdc_user_role`.
#[utoipa::path(post, path = "/ogdc/create_user", tag = "ogdc",
    request_body(content = OgdcNewUser, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Created", body = OgdcMessage),
        CreateRefusals,
    ),
)]
async fn create_user(State(api): Api, Request(req): Request) -> ApiResponse {
    shaped(api.ogdc_create_user(&req).await)
}

/// A workflow's output (OGDC)
#[utoipa::path(get, path = "/ogdc/output/{name}", tag = "ogdc", params(("name" = String, Path)), responses(
    (status = 200, description = "A presigned download", body = OgdcOutput),
    OutputRefusals,
))]
async fn output(State(api): Api, PathParams(name): PathParams<String>, Request(req): Request) -> ApiResponse {
    shaped(api.ogdc_output(&req, &name).await)
}

/// The caller (OGDC)
#[utoipa::path(get, path = "/ogdc/user", tag = "ogdc", responses(
    (status = 200, description = "The caller", body = OgdcUser),
    (status = 401, description = "Refused", body = DetailError),
))]
async fn user(State(api): Api, Request(req): Request) -> ApiResponse {
    let who = api.services.principal(&req).await;
    shaped(who.map(|who| web::json(StatusCode::OK, &OgdcUser { current_user: who.username })))
}

/// The OGDC version this API is
#[utoipa::path(get, path = "/ogdc/version", tag = "ogdc", security(()), responses(
    (status = 200, description = "The version", body = OgdcVersion),
))]
async fn version() -> ApiResponse {
    web::json(StatusCode::OK, &OgdcVersion { ogdc_runner_version: OGDC_VERSION.into() })
}

impl JobsApi {
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
        let token = OgdcToken { access_token: issued.access_token, token_type: "Bearer".into(), utc_expiration };
        let mut r = web::json(StatusCode::OK, &token);
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
        Ok(web::json(StatusCode::OK, &OgdcSubmitted { message, recipe_workflow_name: job.workflow }))
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
        let status = OgdcStatus { status: status.into(), recipe_workflow_name: name.into(), timestamp };
        Ok(web::json(StatusCode::OK, &status))
    }

    async fn ogdc_output(&self, req: &ApiRequest, name: &str) -> Result<ApiResponse, Error> {
        let (stored, rev) = self.ogdc_job(req, name).await?;
        let output = self.output_of(stored, rev).await?;
        match output.url {
            Some(data_url) => Ok(web::json(StatusCode::OK, &OgdcOutput { data_url })),
            None => Err(Error::Conflict(format!(
                "{name} published to the volume (\"{}\"), not a download",
                output.path.unwrap_or_default()
            ))),
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
        Ok(web::json(StatusCode::OK, &OgdcMessage { message }))
    }
}
