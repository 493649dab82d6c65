//! Jobs (seed 004): OGDC shell recipes run as Argo Workflows (see `portico_core::jobs`).
//!
//! | route | who may call | answer |
//! |-------|--------------|--------|
//! | `POST /jobs` `{"recipe": {"meta_yml", "steps"}` or `"source": "github://org:repo@ref/path"`, `"group"?, "resources"?}` (`Idempotency-Key`) | `job.submit` on the group (`job_default_group` if none) | 201 the job (200 when a key replays an earlier submission) |
//! | `GET /jobs` (`limit`, `next`) | any valid bearer | the caller's jobs |
//! | `GET /jobs?all=true` (`phase`, `recipe`, `owner`) | admins | every job |
//! | `GET /jobs/{id}` | the owner, `job.cancel` on the job's group, admins | the job, its phase refreshed from Argo |
//! | `DELETE /jobs/{id}` | the owner, `job.cancel` on the job's group, admins | the job, stopped in Argo, quota released |
//! | `GET /jobs/{id}/logs` | as `GET /jobs/{id}` | the workflow's logs as text (the newest `job_log_max_bytes`) |
//! | `GET /jobs/{id}/output` | as `GET /jobs/{id}` | `pvc`: where it is; `temporary` (succeeded): `{"url", "expires_in"}`, a presigned download |
//! | `/ogdc/...` | see [`ogdc`] | the OGDC service's API, for the `ogdc-runner` CLI |

mod ogdc;

use std::sync::Arc;

use http::{HeaderValue, Method, StatusCode, header};
use portico_core::authz::{Action, Principal};
use portico_core::jobs::engine::WorkflowEngine;
use portico_core::jobs::recipe::Recipe;
use portico_core::jobs::service::{Job, Jobs, Submission};
use portico_core::jobs::source::{RecipeFetcher, RecipeSource};
use portico_core::quotas::Resources;
use portico_core::store::Cursor;
use portico_core::web::{self, ApiRequest, ApiResponse, RouteGroup};
use portico_core::{Config, Error, Services, codes};
use serde::Deserialize;
use serde_json::json;

pub struct JobsApi {
    services: Arc<Services>,
}

impl JobsApi {
    pub fn new(services: Arc<Services>) -> Self {
        JobsApi { services }
    }

    /// Refreshes unfinished jobs (the `reconciler` function, on a schedule).
    pub async fn reconcile(&self) -> Result<usize, Error> {
        self.jobs()?.reconcile().await
    }
}

const LIST_SUBMIT: &[Method] = &[Method::GET, Method::POST];
const GET_DELETE: &[Method] = &[Method::GET, Method::DELETE];
const GET: &[Method] = &[Method::GET];

#[async_trait::async_trait]
impl RouteGroup for JobsApi {
    fn name(&self) -> &'static str {
        "jobs"
    }

    fn route_keys(&self) -> Vec<String> {
        ["ANY /jobs", "ANY /jobs/{proxy+}", "ANY /ogdc/{proxy+}"].map(String::from).into()
    }

    fn config(&self) -> &Config {
        &self.services.config
    }

    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        match (req.method(), web::segments(req).as_slice()) {
            (_, ["ogdc", rest @ ..]) => Ok(self.ogdc(req, rest).await),
            (&Method::POST, ["jobs"]) => self.submit(req).await,
            (&Method::GET, ["jobs"]) => self.list(req).await,
            (&Method::GET, ["jobs", id]) => self.get(req, id).await,
            (&Method::DELETE, ["jobs", id]) => self.cancel(req, id).await,
            (&Method::GET, ["jobs", id, "logs"]) => self.logs(req, id).await,
            (&Method::GET, ["jobs", id, "output"]) => self.output(req, id).await,
            (_, ["jobs"]) => Err(web::method_not_allowed(req, LIST_SUBMIT)),
            (_, ["jobs", _]) => Err(web::method_not_allowed(req, GET_DELETE)),
            (_, ["jobs", _, "logs" | "output"]) => Err(web::method_not_allowed(req, GET)),
            _ => Err(web::no_route(req)),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    /// The recipe uploaded, or `source`: where Portico reads it (never both).
    #[serde(default, deserialize_with = "portico_core::input::nested_object")]
    recipe: Option<UploadedRecipe>,
    source: Option<String>,
    group: Option<String>,
    #[serde(default, deserialize_with = "portico_core::input::nested_object")]
    resources: Requested,
}

/// A recipe directory as the CLI packs it: `meta.yml` and the step file, as text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadedRecipe {
    meta_yml: String,
    steps: String,
}

/// Resources a job asks for (counted against the owner's quota while it runs).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Requested {
    #[serde(default)]
    cpu: i64,
    #[serde(default)]
    memory: i64,
    #[serde(default)]
    storage: i64,
}

impl JobsApi {
    fn engine(&self) -> Result<&dyn WorkflowEngine, Error> {
        self.services
            .workflows
            .as_deref()
            .ok_or_else(|| Error::Unavailable("no workflow engine is configured (argo_server_url)".into()))
    }

    fn jobs(&self) -> Result<Jobs<'_>, Error> {
        Ok(Jobs {
            table: self.services.table.as_ref(),
            engine: self.engine()?,
            config: &self.services.config,
            links: self.services.output_links.as_deref(),
        })
    }

    async fn submit(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        who.require_somewhere(Action::JobSubmit)?;
        let body: SubmitBody = web::json_body(req, &self.services.config)?;
        let group = body.group.unwrap_or_else(|| self.services.config.job_default_group.clone());
        who.require(Action::JobSubmit, &group)?;
        let recipe = match (body.recipe, body.source) {
            (Some(uploaded), None) => Recipe::parse(uploaded.meta_yml.as_bytes(), uploaded.steps.as_bytes())?,
            (None, Some(source)) => self.fetch(&source).await?,
            _ => return Err(Error::bad_request(codes::INVALID_BODY, "give exactly one of 'recipe' and 'source'")),
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
            recipe: &recipe,
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

    /// A recipe from an allow-listed source (`github://org:repo@ref/path`).
    pub async fn fetch(&self, source: &str) -> Result<Recipe, Error> {
        let source = RecipeSource::parse(source)?;
        RecipeFetcher::new(&self.services.config)?.fetch(&source).await
    }

    async fn list(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        let params = web::query_params(req, &["limit", "next", "all", "phase", "recipe", "owner"])?;
        let (limit, after) = web::paging(&params, &self.services.config)?;
        let param = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let jobs = self.jobs()?;
        let (found, next) = if param("all").as_deref() == Some("true") {
            who.require_admin()?;
            let filters =
                ["phase", "recipe", "owner"].into_iter().filter_map(|n| param(n).map(|v| (n.to_owned(), v))).collect();
            jobs.list_all(filters, limit, after).await?
        } else {
            if ["phase", "recipe", "owner"].iter().any(|n| param(n).is_some()) {
                return Err(Error::bad_request(codes::INVALID_QUERY, "filters need all=true (administrators)"));
            }
            jobs.list_owned(&who.username, limit, after).await?
        };
        let config = &self.services.config;
        let items: Vec<_> = found.iter().map(|j| j.view(config)).collect();
        Ok(web::json(StatusCode::OK, &json!({"items": items, "next": next.as_ref().map(Cursor::as_str)})))
    }

    /// Whether `who` may see and control `job`: its owner, `job.cancel` on its group, admins.
    fn may_see(who: &Principal, job: &Job) -> bool {
        job.owner == who.username || who.may(Action::JobCancel, &job.group)
    }

    /// The job, refreshed, if `who` may see it (else 404, so ids do not leak).
    async fn visible(&self, who: &Principal, id: &str) -> Result<Job, Error> {
        let jobs = self.jobs()?;
        let (stored, _) = jobs.get(id).await?;
        if !Self::may_see(who, &stored) {
            return Err(Error::NotFound(format!("job '{id}' does not exist")));
        }
        jobs.refresh(id).await
    }

    async fn get(&self, req: &ApiRequest, id: &str) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        Ok(web::json(StatusCode::OK, &self.visible(&who, id).await?.view(&self.services.config)))
    }

    async fn cancel(&self, req: &ApiRequest, id: &str) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        let jobs = self.jobs()?;
        let (stored, _) = jobs.get(id).await?;
        if !Self::may_see(&who, &stored) {
            return Err(Error::NotFound(format!("job '{id}' does not exist")));
        }
        let job = jobs.cancel(id, &who.username).await?;
        Ok(web::json(StatusCode::OK, &job.view(&self.services.config)))
    }

    async fn output(&self, req: &ApiRequest, id: &str) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        let job = self.visible(&who, id).await?;
        Ok(web::json(StatusCode::OK, &self.jobs()?.output(&job).await?))
    }

    async fn logs(&self, req: &ApiRequest, id: &str) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        let job = self.visible(&who, id).await?;
        let text = self.jobs()?.logs(&job).await?;
        let mut r = http::Response::new(text);
        *r.status_mut() = StatusCode::OK;
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        Ok(r)
    }
}
