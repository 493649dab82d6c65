//! Jobs (seed 004): OGDC shell recipes run as Argo Workflows (see `portico_core::jobs`).
//!
//! | route | who may call | answer |
//! |-------|--------------|--------|
//! | `POST /jobs` `{"recipe": {"meta_yml", "steps"}` or `"source": "github://org:repo@ref/path"` or `"template", "parameters"`, `"group"?, "resources"?}` (`Idempotency-Key`) | `job.submit` on the group (a template's own; else `job_default_group` if none) | 201 the job (200 when a key replays an earlier submission) |
//! | `GET /jobs` (`limit`, `next`) | any valid bearer | the caller's jobs |
//! | `GET /jobs?all=true` (`phase`, `recipe`, `owner`) | admins | every job |
//! | `GET /jobs/{id}` | the owner, `job.cancel` on the job's group, admins | the job, its phase refreshed from Argo |
//! | `DELETE /jobs/{id}` | the owner, `job.cancel` on the job's group, admins | the job, stopped in Argo, quota released |
//! | `GET /jobs/{id}/logs` | as `GET /jobs/{id}` | the workflow's logs as text (the newest `job_log_max_bytes`) |
//! | `GET /jobs/{id}/output` | as `GET /jobs/{id}` | `pvc`: where it is; `temporary` (succeeded): `{"url", "expires_in"}`, a presigned download |
//! | `GET /recipes`, `GET /recipes/{name}` | any valid bearer | registered templates and their declared parameters |
//! | `PUT /recipes/{name}` `{"workflow_template", "description"?, "group"?, "parameters"?}` | admins | the template, registered or replaced |
//! | `DELETE /recipes/{name}` | admins | 204 |
//! | `/ogdc/...` | see `src/ogdc.rs` | the OGDC service's API, for the `ogdc-runner` CLI |

mod ogdc;

use std::sync::{Arc, OnceLock};

use http::{HeaderValue, Method, StatusCode, header};
use portico_core::authz::{Action, Principal};
use portico_core::jobs::engine::WorkflowEngine;
use portico_core::jobs::recipe::{Output, Recipe};
use portico_core::jobs::service::{Job, Jobs, Submission, Work};
use portico_core::jobs::source::{RecipeFetcher, RecipeSource};
use portico_core::jobs::templates::{RegisteredTemplate, Templates};
use portico_core::quotas::Resources;
use portico_core::store::Cursor;
use portico_core::web::{self, ApiRequest, ApiResponse, RouteGroup};
use portico_core::{Config, Error, Services, codes};
use serde::Deserialize;
use serde_json::json;

pub struct JobsApi {
    services: Arc<Services>,
    /// Built at the first `source` submission and kept, so its connections are reused.
    fetcher: OnceLock<RecipeFetcher>,
}

impl JobsApi {
    pub fn new(services: Arc<Services>) -> Self {
        JobsApi { services, fetcher: OnceLock::new() }
    }

    /// Refreshes unfinished jobs (the `reconciler` function, on a schedule).
    pub async fn reconcile(&self) -> Result<usize, Error> {
        self.jobs()?.reconcile().await
    }
}

const LIST_SUBMIT: &[Method] = &[Method::GET, Method::POST];
const GET_DELETE: &[Method] = &[Method::GET, Method::DELETE];
const GET: &[Method] = &[Method::GET];
const GET_PUT_DELETE: &[Method] = &[Method::GET, Method::PUT, Method::DELETE];

#[async_trait::async_trait]
impl RouteGroup for JobsApi {
    fn name(&self) -> &'static str {
        "jobs"
    }

    fn route_keys(&self) -> Vec<String> {
        ["ANY /jobs", "ANY /jobs/{proxy+}", "ANY /recipes", "ANY /recipes/{proxy+}", "ANY /ogdc/{proxy+}"]
            .map(String::from)
            .into()
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
            (&Method::GET, ["recipes"]) => self.list_templates(req).await,
            (&Method::GET, ["recipes", name]) => self.get_template(req, name).await,
            (&Method::PUT, ["recipes", name]) => self.put_template(req, name).await,
            (&Method::DELETE, ["recipes", name]) => self.delete_template(req, name).await,
            (_, ["recipes"]) => Err(web::method_not_allowed(req, GET)),
            (_, ["recipes", _]) => Err(web::method_not_allowed(req, GET_PUT_DELETE)),
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
    /// The recipe uploaded, `source`: where Portico reads it, or `template`: a registered
    /// template's name with `parameters` (exactly one of the three).
    #[serde(default, deserialize_with = "portico_core::input::nested_object")]
    recipe: Option<UploadedRecipe>,
    source: Option<String>,
    template: Option<String>,
    #[serde(default, deserialize_with = "portico_core::input::nested_object")]
    parameters: std::collections::BTreeMap<String, String>,
    /// A recipe's `pvc` output replaces an earlier publication (else its publish step refuses).
    #[serde(default)]
    overwrite: bool,
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

/// `PUT /recipes/{name}`: an Argo WorkflowTemplate and its declared parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateBody {
    workflow_template: String,
    #[serde(default)]
    description: String,
    group: Option<String>,
    #[serde(default)]
    parameters: Vec<portico_core::jobs::templates::TemplateParameter>,
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
        let one_of =
            || Error::bad_request(codes::INVALID_BODY, "give exactly one of 'recipe', 'source' and 'template'");
        // A template's group is its own; a recipe's is the body's or the default.
        let (recipe, template) = match (body.recipe, body.source, body.template) {
            (Some(uploaded), None, None) => {
                (Some(Recipe::parse(uploaded.meta_yml.as_bytes(), uploaded.steps.as_bytes())?), None)
            }
            (None, Some(source), None) => (Some(self.fetch(&source).await?), None),
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

    async fn list_templates(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        self.services.principal(req).await?;
        let params = web::query_params(req, &["limit", "next"])?;
        let (limit, after) = web::paging(&params, &self.services.config)?;
        let (items, next) = Templates { table: self.services.table.as_ref() }.list(limit, after).await?;
        Ok(web::json(StatusCode::OK, &json!({"items": items, "next": next.as_ref().map(Cursor::as_str)})))
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
    async fn output_of(&self, job: Job, rev: String) -> Result<serde_json::Value, Error> {
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
