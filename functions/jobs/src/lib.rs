//! Jobs (OGDC): OGDC shell recipes run as Argo Workflows (see `portico_jobs`), the
//! registered templates, and the OGDC service's API for the `ogdc-runner` CLI (`ogdc`). Each
//! route is declared on its handler (`#[utoipa::path]`): who may call it, what it answers.

mod ogdc;

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use http::{HeaderValue, StatusCode, header};
use portico_core::authz::{Action, Principal};
use portico_core::openapi::Paging;
use portico_core::openapi::errors::{
    Error400, Error401, Error403, Error409, Error413, Error415, Error422, Error502, Error503, Error504,
    GuardedReadErrors, ListErrors, ReadErrors, UpstreamChangeErrors, UpstreamReadErrors,
};
use portico_core::quotas::Resources;
use portico_core::web::{self, ApiRequest, ApiResponse, NoFilters, PagedQuery, PathParams, Request, Routes, Scope};
use portico_core::{Error, Services, codes};
use portico_jobs::JobClients;
use portico_jobs::engine::WorkflowEngine;
use portico_jobs::recipe::{Output, Recipe};
use portico_jobs::service::{Job, JobOutput, JobView, Jobs, Submission, Work};
use portico_jobs::source::{RecipeFetcher, RecipeSource};
use portico_jobs::templates::{RegisteredTemplate, TemplateParameter, Templates};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `POST /jobs`: exactly one of `recipe`, `source` and `template`.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SubmitJob)]
pub struct SubmitBody {
    /// The recipe uploaded.
    #[serde(default, deserialize_with = "portico_core::input::nested_object", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub recipe: Option<UploadedRecipe>,
    /// `github://org:repo@ref/path`, for a repository in `recipe_github_allow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A registered template's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The template's parameters (templates only).
    #[serde(default, deserialize_with = "portico_core::input::nested_object")]
    pub parameters: std::collections::BTreeMap<String, String>,
    /// A `pvc` output replaces an earlier publication.
    #[serde(default)]
    pub overwrite: bool,
    /// Default `job_default_group`; a template's group is its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, deserialize_with = "portico_core::input::nested_object")]
    pub resources: Requested,
}

/// A recipe directory as the CLI packs it: `meta.yml` and the step file, as text.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadedRecipe {
    pub meta_yml: String,
    pub steps: String,
}

/// `PUT /recipes/{name}`: an Argo WorkflowTemplate and its declared parameters.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    /// The WorkflowTemplate's name in Argo's namespace.
    #[schema(pattern = "^[a-z][a-z0-9-]{0,62}$")]
    pub workflow_template: String,
    #[serde(default)]
    pub description: String,
    /// Default `job_default_group`.
    #[schema(min_length = 1, max_length = 64)]
    pub group: Option<String>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub parameters: Vec<TemplateParameter>,
}

/// Resources a job asks for (counted against the owner's quota while it runs).
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Requested {
    /// Millicores.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_099_511_627_776_f64)]
    pub cpu: i64,
    /// MiB.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_099_511_627_776_f64)]
    pub memory: i64,
    /// GiB.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_099_511_627_776_f64)]
    pub storage: i64,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobPage {
    pub items: Vec<JobView>,
    pub next: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplatePage {
    pub items: Vec<RegisteredTemplate>,
    pub next: Option<String>,
}

/// The jobs route group's state (also the reconciler's).
pub struct JobsApi {
    services: Arc<Services>,
    clients: Arc<JobClients>,
    /// Built at the first `source` submission and kept, so its connections are reused.
    fetcher: OnceLock<RecipeFetcher>,
}

impl JobsApi {
    pub fn new(services: Arc<Services>, clients: Arc<JobClients>) -> Self {
        JobsApi { services, clients, fetcher: OnceLock::new() }
    }

    /// The group, serving `services` with the jobs' clients: `/jobs`, `/recipes`, and `/ogdc`
    /// in OGDC's shapes.
    pub fn routes(services: Arc<Services>, clients: Arc<JobClients>) -> Routes {
        let config = services.config.clone();
        Routes::new("jobs", &config, Arc::new(JobsApi::new(services, clients)), declared())
            .with_error_shape(ogdc::PREFIX, portico_core::web::as_detail)
    }

    /// Refreshes unfinished jobs (the `reconciler` function, on a schedule).
    pub async fn reconcile(&self) -> Result<usize, Error> {
        self.jobs()?.reconcile().await
    }
}

/// Every route of the group, each declared on its handler.
pub fn declared() -> OpenApiRouter<Arc<JobsApi>> {
    OpenApiRouter::new()
        .routes(routes!(submit, list))
        .routes(routes!(get, cancel))
        .routes(routes!(logs))
        .routes(routes!(output))
        .routes(routes!(list_templates))
        .routes(routes!(get_template, put_template, delete_template))
        .merge(ogdc::declared())
}

type Api = State<Arc<JobsApi>>;
type Answer = Result<ApiResponse, Error>;

/// Submit a job
///
/// Needs `job.submit` on the group. The same `Idempotency-Key` and body answer the same job (200).
#[utoipa::path(post, path = "/jobs", tag = "jobs",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe; kept `idempotency_ttl` seconds.",
        nullable = false, pattern = "^[!-~]{1,255}$")),
    request_body = SubmitBody,
    responses(
        (status = 201, description = "The job, `Pending`", body = JobView),
        (status = 200, description = "The job an earlier submission with this key made", body = JobView),
        (status = 400, response = Error400), (status = 401, response = Error401), (status = 403, response = Error403),
        (status = 409, response = Error409), (status = 413, response = Error413), (status = 415, response = Error415),
        (status = 422, response = Error422), (status = 502, response = Error502), (status = 503, response = Error503),
        (status = 504, response = Error504),
    ),
)]
async fn submit(State(api): Api, Request(req): Request) -> Answer {
    api.submit(&req).await
}

/// List jobs
///
/// The caller's own; with `all=true` (administrators) every job, filtered by `phase`, `recipe`, `owner`.
#[utoipa::path(get, path = "/jobs", tag = "jobs",
    params(Paging, JobFilters),
    responses(
        (status = 200, description = "A page of jobs", body = JobPage),
        ListErrors,
    ),
)]
async fn list(State(api): Api, query: Result<PagedQuery<JobFilters>, Error>, Request(req): Request) -> Answer {
    api.list(&req, query).await
}

/// `GET /jobs`' own parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct JobFilters {
    /// `true`: every job (administrators).
    all: Option<String>,
    /// With `all`.
    phase: Option<String>,
    /// With `all`.
    recipe: Option<String>,
    /// With `all`.
    owner: Option<String>,
}

/// Get a job
///
/// Its phase refreshed from Argo.
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs", params(("id" = String, Path)), responses(
    (status = 200, description = "The job", body = JobView),
        UpstreamReadErrors,
    ))]
async fn get(State(api): Api, PathParams(id): PathParams<String>, Request(req): Request) -> Answer {
    api.get(&req, &id).await
}

/// Cancel a job
///
/// Stopped in Argo, quota released; a finished job is 409.
#[utoipa::path(delete, path = "/jobs/{id}", tag = "jobs", params(("id" = String, Path)), responses(
    (status = 200, description = "The job", body = JobView),
        UpstreamChangeErrors,
    ))]
async fn cancel(State(api): Api, PathParams(id): PathParams<String>, Request(req): Request) -> Answer {
    api.cancel(&req, &id).await
}

/// A job's logs
#[utoipa::path(get, path = "/jobs/{id}/logs", tag = "jobs", params(("id" = String, Path)), responses(
    (status = 200, description = "The newest `job_log_max_bytes` of the workflow's logs", content_type = "text/plain", body = String),
        UpstreamReadErrors,
    ))]
async fn logs(State(api): Api, PathParams(id): PathParams<String>, Request(req): Request) -> Answer {
    api.logs(&req, &id).await
}

/// Where a job's output is
#[utoipa::path(get, path = "/jobs/{id}/output", tag = "jobs", params(("id" = String, Path)), responses(
    (status = 200, description = "A `pvc` location or a presigned download", body = JobOutput),
        UpstreamChangeErrors,
    ))]
async fn output(State(api): Api, PathParams(id): PathParams<String>, Request(req): Request) -> Answer {
    api.output(&req, &id).await
}

/// List registered templates
#[utoipa::path(get, path = "/recipes", tag = "jobs", params(Paging), responses(
    (status = 200, description = "A page of templates", body = TemplatePage),
    (status = 400, response = Error400), (status = 401, response = Error401), (status = 503, response = Error503),
))]
async fn list_templates(State(api): Api, query: Result<PagedQuery<NoFilters>, Error>, Request(req): Request) -> Answer {
    api.list_templates(&req, query).await
}

/// Get a registered template
#[utoipa::path(get, path = "/recipes/{name}", tag = "jobs", params(TemplatePath), responses(
    (status = 200, description = "The template and its parameters", body = RegisteredTemplate),
        ReadErrors,
    ))]
async fn get_template(State(api): Api, PathParams(name): PathParams<String>, Request(req): Request) -> Answer {
    api.get_template(&req, &name).await
}

/// Register or replace a template
///
/// Administrators only.
#[utoipa::path(put, path = "/recipes/{name}", tag = "jobs", params(TemplatePath), request_body = TemplateBody,
    responses(
        (status = 200, description = "The template", body = RegisteredTemplate),
        (status = 400, response = Error400), (status = 401, response = Error401), (status = 403, response = Error403),
        (status = 413, response = Error413), (status = 415, response = Error415), (status = 503, response = Error503),
    ),
)]
async fn put_template(State(api): Api, PathParams(name): PathParams<String>, Request(req): Request) -> Answer {
    api.put_template(&req, &name).await
}

/// Remove a template
///
/// Administrators only.
#[utoipa::path(delete, path = "/recipes/{name}", tag = "jobs", params(TemplatePath), responses(
    (status = 204, description = "Removed"),
        GuardedReadErrors,
    ))]
async fn delete_template(State(api): Api, PathParams(name): PathParams<String>, Request(req): Request) -> Answer {
    api.delete_template(&req, &name).await
}

/// A registered template's name in the path (a Kubernetes-style name).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Read by the derive: handlers take the path's parameters themselves.
struct TemplatePath {
    #[param(pattern = "^[a-z][a-z0-9-]{0,62}$")]
    name: String,
}

impl JobsApi {
    fn engine(&self) -> Result<&dyn WorkflowEngine, Error> {
        self.clients
            .workflows
            .as_deref()
            .ok_or_else(|| Error::Unavailable("no workflow engine is configured (argo_server_url)".into()))
    }

    fn jobs(&self) -> Result<Jobs<'_>, Error> {
        Ok(Jobs {
            table: self.services.table.as_ref(),
            engine: self.engine()?,
            config: &self.services.config,
            links: self.clients.output_links.as_deref(),
        })
    }

    async fn submit(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        who.require_somewhere(Action::JobSubmit)?;
        let body: SubmitBody = web::json_body(req, &self.services.config)?;
        let one_of =
            || Error::bad_request(codes::INVALID_BODY, "give exactly one of 'recipe', 'source' and 'template'");
        // A template's group is its own; a recipe's is the body's or the default.
        let (recipe, template) = match (body.recipe, body.source, body.template) {
            (Some(uploaded), None, None) => {
                let parsed = Recipe::parse(uploaded.meta_yml.as_bytes(), uploaded.steps.as_bytes()).map_err(|e| {
                    let field = if e.is_about_steps() { "recipe.steps" } else { "recipe.meta_yml" };
                    Error::bad_field(codes::INVALID_RECIPE, field, e.to_string())
                })?;
                (Some(parsed), None)
            }
            (None, Some(source), None) => {
                let fetched = self.fetch(&source).await.map_err(|e| match e {
                    Error::BadRequest { code, message, field: None } => Error::bad_field(code, "source", message),
                    other => other,
                })?;
                (Some(fetched), None)
            }
            (None, None, Some(name)) => {
                let found =
                    Templates { table: self.services.table.as_ref() }.get(&name).await.map_err(|e| match e {
                        Error::NotFound(_) => Error::invalid_field("template", "names no registered template"),
                        other => other,
                    })?;
                (None, Some(found))
            }
            _ => return Err(one_of()),
        };
        if template.is_none() && !body.parameters.is_empty() {
            return Err(Error::invalid_field("parameters", "are for templates"));
        }
        let group = match (&template, body.group) {
            (Some(t), None) => t.group.clone(),
            (Some(_), Some(_)) => return Err(Error::invalid_field("group", "is the template's own")),
            (None, group) => group.unwrap_or_else(|| self.services.config.job_default_group.clone()),
        };
        who.require(Action::JobSubmit, &group)?;
        let work = match (&recipe, &template) {
            (Some(recipe), _) => Work::Recipe { recipe, overwrite: body.overwrite },
            (None, Some(template)) => Work::Template { template, values: template.values(&body.parameters)? },
            (None, None) => return Err(one_of()),
        };
        let resources = Resources {
            cpu: body.resources.cpu,
            memory: body.resources.memory,
            storage: body.resources.storage,
            ..Resources::default()
        };
        let key = match req.headers().get("idempotency-key") {
            Some(v) => Some(v.to_str().map_err(|_| {
                Error::bad_request(codes::INVALID_FIELD, "header 'Idempotency-Key' must be visible ASCII")
            })?),
            None => None,
        };
        // The key is bound to what was asked: the same key with another body is refused.
        let digest = |body: &[u8]| {
            let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
            d.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let submission = Submission {
            owner: &who.username,
            group: &group,
            work,
            resources,
            limits: who.limits,
            idempotency: key.map(|k| (k, digest(req.body()))),
        };
        let (job, replayed) = self.jobs()?.submit(submission).await?;
        let status = if replayed { StatusCode::OK } else { StatusCode::CREATED };
        let mut r = web::json(status, &job.view(&self.services.config));
        if let Ok(location) = HeaderValue::from_str(&format!("/jobs/{}", job.id)) {
            r.headers_mut().insert(header::LOCATION, location);
        }
        Ok(r)
    }

    async fn list_templates(&self, req: &ApiRequest, query: Result<PagedQuery<NoFilters>, Error>) -> Answer {
        self.services.principal(req).await?;
        let (limit, after) = query?.paging(&self.services.config)?;
        let (items, next) = Templates { table: self.services.table.as_ref() }.list(limit, after).await?;
        Ok(web::json(StatusCode::OK, &TemplatePage { items, next: next.map(|c| c.as_str().to_owned()) }))
    }

    async fn get_template(&self, req: &ApiRequest, name: &str) -> Result<ApiResponse, Error> {
        self.services.principal(req).await?;
        let found = Templates { table: self.services.table.as_ref() }.get(name).await?;
        Ok(web::json(StatusCode::OK, &found))
    }

    async fn put_template(&self, req: &ApiRequest, name: &str) -> Result<ApiResponse, Error> {
        self.services.require_admin(req).await?;
        let body: TemplateBody = web::json_body(req, &self.services.config)?;
        let template = RegisteredTemplate {
            name: name.to_owned(),
            workflow_template: body.workflow_template,
            description: body.description,
            group: body.group.unwrap_or_else(|| self.services.config.job_default_group.clone()),
            parameters: body.parameters,
        };
        Templates { table: self.services.table.as_ref() }.put(&template).await?;
        Ok(web::json(StatusCode::OK, &template))
    }

    async fn delete_template(&self, req: &ApiRequest, name: &str) -> Result<ApiResponse, Error> {
        self.services.require_admin(req).await?;
        Templates { table: self.services.table.as_ref() }.delete(name).await?;
        Ok(web::empty(StatusCode::NO_CONTENT))
    }

    /// A recipe from an allow-listed source (`github://org:repo@ref/path`).
    pub async fn fetch(&self, source: &str) -> Result<Recipe, Error> {
        let source = RecipeSource::parse(source)?;
        self.fetcher()?.fetch(&source).await
    }

    fn fetcher(&self) -> Result<&RecipeFetcher, Error> {
        if let Some(fetcher) = self.fetcher.get() {
            return Ok(fetcher);
        }
        // Built outside the lock so a failure is returned (and retried next time), not kept; two
        // first calls at once may both build one, and the one stored first serves both.
        let built = RecipeFetcher::new(&self.services.config)?;
        Ok(self.fetcher.get_or_init(|| built))
    }

    async fn list(&self, req: &ApiRequest, query: Result<PagedQuery<JobFilters>, Error>) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        let query = query?;
        let (limit, after) = query.paging(&self.services.config)?;
        let jobs = self.jobs()?;
        let JobFilters { all, phase, recipe, owner } = &query.filters;
        let filters = [("phase", phase), ("recipe", recipe), ("owner", owner)];
        let (found, next) = match web::scope(all.as_deref(), &filters, &who)? {
            Scope::All(filters) => jobs.list_all(filters, limit, after).await?,
            Scope::Own => jobs.list_owned(&who.username, limit, after).await?,
        };
        let config = &self.services.config;
        let items = found.iter().map(|j| j.view(config)).collect();
        Ok(web::json(StatusCode::OK, &JobPage { items, next: next.map(|c| c.as_str().to_owned()) }))
    }

    /// Whether `who` may see and control `job`: its owner, `job.cancel` on its group, admins.
    fn may_see(who: &Principal, job: &Job) -> bool {
        job.owner == who.username || who.may(Action::JobCancel, &job.group)
    }

    /// The stored job and its revision, if `who` may see it (else 404, so ids do not leak).
    /// 1 read, no engine call.
    async fn visible_stored(&self, who: &Principal, id: &str) -> Result<(Job, String), Error> {
        let (stored, rev) = self.jobs()?.get(id).await?;
        if !Self::may_see(who, &stored) {
            return Err(Error::NotFound(format!("job '{id}' does not exist")));
        }
        Ok((stored, rev))
    }

    /// Where `job`'s output is. Only a `temporary` output depends on the phase (a link once
    /// succeeded), so only then is an unfinished job's phase refreshed from the engine first.
    async fn output_of(&self, job: Job, rev: String) -> Result<JobOutput, Error> {
        let jobs = self.jobs()?;
        let job = match job.output == Some(Output::Temporary) && !job.phase.is_final() {
            true => jobs.refreshed(job, rev).await?,
            false => job,
        };
        jobs.output(&job).await
    }

    async fn get(&self, req: &ApiRequest, id: &str) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        let (stored, rev) = self.visible_stored(&who, id).await?;
        let job = self.jobs()?.refreshed(stored, rev).await?;
        Ok(web::json(StatusCode::OK, &job.view(&self.services.config)))
    }

    async fn cancel(&self, req: &ApiRequest, id: &str) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        let (stored, rev) = self.visible_stored(&who, id).await?;
        let job = self.jobs()?.cancel(stored, rev, &who.username).await?;
        Ok(web::json(StatusCode::OK, &job.view(&self.services.config)))
    }

    async fn output(&self, req: &ApiRequest, id: &str) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        let (stored, rev) = self.visible_stored(&who, id).await?;
        Ok(web::json(StatusCode::OK, &self.output_of(stored, rev).await?))
    }

    async fn logs(&self, req: &ApiRequest, id: &str) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        // The engine has the logs whatever the stored phase says: no refresh.
        let (job, _) = self.visible_stored(&who, id).await?;
        let text = self.jobs()?.logs(&job).await?;
        let mut r = http::Response::new(text);
        *r.status_mut() = StatusCode::OK;
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        Ok(r)
    }
}
