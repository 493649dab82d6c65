//! My jobs: the list, the two ways to submit one (a registered template with its parameters,
//! or an uploaded OGDC recipe), and one job's page (`job`), all through the jobs API.
//!
//! | route | what |
//! |-------|------|
//! | `GET /console/jobs` (`next`) | my jobs, and the two submit forms |
//! | `POST /console/jobs` | `POST /jobs` with the form's `Idempotency-Key`, then the job's page |
//! | `GET /console/jobs/{id}` | the job: facts, phase (kept fresh by the script), logs, output, cancel |
//! | `GET /console/jobs/{id}/status` | `{"phase", "finished"}`, for the script |
//! | `GET /console/jobs/{id}/output` | to the download link, or where the output is |
//! | `POST /console/jobs/{id}/cancel` | `DELETE /jobs/{id}`, then the job's page |

mod job;

use std::collections::BTreeMap;
use std::time::Duration;

use http::{HeaderName, Method, StatusCode};
use maud::{Markup, html};
use portico_core::web::ApiResponse;
pub use portico_jobs::service::JobView;
use portico_jobs::templates::{RegisteredTemplate, TemplateParameter};
use serde_json::{Value, json};

use crate::Ctx;
use crate::backend::ApiError;
use crate::guard::{self, BASE, segment};
use crate::layout::{FieldAttrs, alert, csrf_field, html_response, page, text_field, when};
use crate::pages::{Listing, listing, pager};

pub async fn route(ctx: &Ctx<'_>, rest: &[&str]) -> Result<ApiResponse, ApiError> {
    match (ctx.req.method(), rest) {
        (&Method::GET, []) => list(ctx, &Forms::fresh(), StatusCode::OK).await,
        (&Method::POST, []) => submit(ctx).await,
        (&Method::GET, [id]) => job::show(ctx, id, None).await,
        (&Method::GET, [id, "status"]) => job::status(ctx, id).await,
        (&Method::GET, [id, "output"]) => job::output(ctx, id).await,
        (&Method::POST, [id, "cancel"]) => job::cancel(ctx, id).await,
        _ => Err(super::not_found()),
    }
}

fn kind_label(job: &JobView) -> &'static str {
    if job.kind == "template" { "Template" } else { "Recipe" }
}

/// Which submit form a post came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Template,
    Recipe,
}

/// What the submit forms show: what was typed, each form's idempotency key, and a refusal.
struct Forms {
    template: String,
    parameters: String,
    template_key: String,
    meta_yml: String,
    steps: String,
    group: String,
    overwrite: bool,
    recipe_key: String,
    error: Option<Refusal>,
}

/// A refusal, the form it concerns and the field of that form it names (else the form's top).
struct Refusal {
    kind: Kind,
    field: Option<&'static str>,
    error: ApiError,
}

/// A fresh key per rendered form: a double submit of one rendering makes one job.
fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Forms {
    fn fresh() -> Forms {
        Forms {
            template: String::new(),
            parameters: String::new(),
            template_key: new_key(),
            meta_yml: String::new(),
            steps: String::new(),
            group: String::new(),
            overwrite: false,
            recipe_key: new_key(),
            error: None,
        }
    }

    /// The refusal of form `kind` about `field` (`None`: about no field of it).
    fn problem(&self, kind: Kind, field: Option<&str>) -> Option<&ApiError> {
        self.error.as_ref().filter(|r| r.kind == kind && r.field == field).map(|r| &r.error)
    }
}

/// The field of form `kind` that the API's refusal concerns, if any.
fn field_of(kind: Kind, e: &ApiError) -> Option<&'static str> {
    match kind {
        Kind::Template => match e.field() {
            Some("template") => Some("template"),
            Some(f) if f == "parameters" || f.starts_with("parameters.") => Some("parameters"),
            _ => None,
        },
        Kind::Recipe => match e.field() {
            Some("recipe.meta_yml") => Some("meta_yml"),
            Some("recipe.steps") => Some("steps"),
            Some("group") => Some("group"),
            _ => None,
        },
    }
}

async fn list(ctx: &Ctx<'_>, forms: &Forms, status: StatusCode) -> Result<ApiResponse, ApiError> {
    let next = ctx.query("next");
    let listed = listing::<JobView>(ctx, "/jobs", &[("next", next.as_str())]).await?;
    let Listing { items: jobs, next: more, error: list_error } = listed;
    let templates = templates(ctx).await?;
    let body = html! {
        (summary(forms))
        section aria-labelledby="my-jobs" {
            h2 id="my-jobs" { "Jobs you submitted" }
            (alert(list_error.as_ref()))
            @if jobs.is_empty() && list_error.is_none() {
                p { "You have not submitted any jobs yet." }
            } @else if !jobs.is_empty() {
                div.table-wrap {
                    table aria-labelledby="my-jobs" {
                        thead { tr {
                            th scope="col" { "Job" }
                            th scope="col" { "Recipe or template" }
                            th scope="col" { "Phase" }
                            th scope="col" { "Submitted" }
                        } }
                        tbody {
                            @for job in &jobs {
                                tr {
                                    td { a href={ (BASE) "/jobs/" (segment(&job.id)) } { code { (job.id) } } }
                                    td { (job.recipe) " " span.hint { "(" (kind_label(job)) ")" } }
                                    td { (phase(job, None)) }
                                    td { (when(&job.created_at)) }
                                }
                            }
                        }
                    }
                }
            }
            (pager("/jobs", &[], more.as_deref(), "More jobs"))
        }
        (template_form(ctx, forms, &templates))
        (recipe_form(ctx, forms))
    };
    Ok(html_response(status, page("My jobs", Some(&ctx.viewer), body)))
}

/// After a refusal: a pointer at the top of the page to where the form says why (the forms
/// are below the list, maybe out of sight).
fn summary(forms: &Forms) -> Markup {
    let Some(r) = &forms.error else { return html! {} };
    let target = match (r.field, r.kind) {
        (Some(field), _) => format!("#f-{field}"),
        (None, Kind::Template) => "#run-template".into(),
        (None, Kind::Recipe) => "#upload-recipe".into(),
    };
    html! {
        p.alert role="alert" { "The job was not submitted: " a href=(target) { "see why" } "." }
    }
}

/// Every registered template (few: administrators register them), for the form's choice.
async fn templates(ctx: &Ctx<'_>) -> Result<Vec<RegisteredTemplate>, ApiError> {
    let mut all = Vec::new();
    let mut next = String::new();
    for _ in 0..20 {
        let answer =
            ctx.api(Method::GET, format!("/recipes{}", guard::query(&[("next", next.as_str())]))).send().await?;
        let page: Listing<RegisteredTemplate> = answer.json()?;
        all.extend(page.items);
        match page.next {
            Some(n) => next = n,
            None => break,
        }
    }
    Ok(all)
}

fn template_form(ctx: &Ctx<'_>, forms: &Forms, templates: &[RegisteredTemplate]) -> Markup {
    let problem = forms.problem(Kind::Template, Some("template"));
    html! {
        section aria-labelledby="run-template" {
            h2 id="run-template" { "Run a registered template" }
            @if templates.is_empty() {
                p { "No templates are registered yet." }
            } @else {
                form.card method="post" action={ (BASE) "/jobs" } {
                    (csrf_field(&ctx.viewer))
                    input type="hidden" name="kind" value="template";
                    input type="hidden" name="key" value=(forms.template_key);
                    (alert(forms.problem(Kind::Template, None)))
                    div.field {
                        label for="f-template" { "Template" }
                        select id="f-template" name="template" required
                            aria-invalid=[problem.map(|_| "true")] aria-describedby=[problem.map(|_| "f-template-error")] {
                            option value="" { "Choose a template" }
                            @for t in templates {
                                option value=(t.name) selected[forms.template == t.name] { (t.name) }
                            }
                        }
                        @if let Some(e) = problem {
                            p.field-error id="f-template-error" { (e.message) }
                        }
                    }
                    (area("Parameters", "parameters", &forms.parameters, 4,
                        "One name=value per line, such as epsg=3413; a parameter left out takes its default.",
                        forms.problem(Kind::Template, Some("parameters"))))
                    button type="submit" { "Run the template" }
                }
                div.table-wrap {
                    table {
                        caption { "Templates and their parameters" }
                        thead { tr { th scope="col" { "Template" } th scope="col" { "What it does" } th scope="col" { "Parameters" } } }
                        tbody {
                            @for t in templates {
                                tr {
                                    td { code { (t.name) } }
                                    td { (t.description) }
                                    td { ul { @for p in &t.parameters { li { (parameter(p)) } } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A declared parameter in words: name, required or its default, the pattern it must match.
fn parameter(p: &TemplateParameter) -> Markup {
    html! {
        code { (p.name) }
        @if p.required { " (required)" }
        @if let Some(d) = &p.default { " (default " code { (d) } ")" }
        @if let Some(pattern) = &p.pattern { ", matching " code { (pattern) } }
    }
}

fn recipe_form(ctx: &Ctx<'_>, forms: &Forms) -> Markup {
    let group_error = forms.problem(Kind::Recipe, Some("group"));
    html! {
        section aria-labelledby="upload-recipe" {
            h2 id="upload-recipe" { "Upload a recipe" }
            form.card method="post" action={ (BASE) "/jobs" } {
                (csrf_field(&ctx.viewer))
                input type="hidden" name="kind" value="recipe";
                input type="hidden" name="key" value=(forms.recipe_key);
                (alert(forms.problem(Kind::Recipe, None)))
                (area("meta.yml", "meta_yml", &forms.meta_yml, 10,
                    "The recipe's meta.yml, as ogdc-runner reads it.", forms.problem(Kind::Recipe, Some("meta_yml"))))
                (area("Steps", "steps", &forms.steps, 8,
                    "The step file: one shell command per line.", forms.problem(Kind::Recipe, Some("steps"))))
                (text_field(&format!("Group (empty: {})", ctx.config().job_default_group), "group", &forms.group,
                    group_error, FieldAttrs::default()))
                div.field {
                    label for="f-overwrite" {
                        input id="f-overwrite" type="checkbox" name="overwrite" value="1" checked[forms.overwrite];
                        " Replace an earlier publication of this recipe (pvc output)"
                    }
                }
                button type="submit" { "Submit the recipe" }
            }
        }
    }
}

/// A labelled textarea with a hint, and the refusal about it (if any) under it.
fn area(label: &str, name: &str, value: &str, rows: u8, hint: &str, problem: Option<&ApiError>) -> Markup {
    let id = format!("f-{name}");
    let (hint_id, error_id) = (format!("{id}-hint"), format!("{id}-error"));
    let described = match problem {
        Some(_) => format!("{hint_id} {error_id}"),
        None => hint_id.clone(),
    };
    html! {
        div.field {
            label for=(id) { (label) }
            p.hint id=(hint_id) { (hint) }
            textarea id=(id) name=(name) rows=(rows) spellcheck="false"
                aria-invalid=[problem.map(|_| "true")] aria-describedby=(described) { (value) }
            @if let Some(e) = problem {
                p.field-error id=(error_id) { (e.message) }
            }
        }
    }
}

/// A phase badge; with `refresh`, the script keeps it current until the job finishes.
pub fn phase(job: &JobView, refresh: Option<&str>) -> Markup {
    let refresh = refresh.filter(|_| !job.phase.is_final());
    html! {
        span.status data-status=(job.phase.as_str()) data-refresh=[refresh] aria-live=[refresh.map(|_| "polite")] { (job.phase.as_str()) }
    }
}

async fn submit(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let form = ctx.form();
    let mut forms = Forms::fresh();
    let key = form.get("key").to_owned();
    let (kind, body) = match form.get("kind") {
        "template" => {
            forms.template = form.get("template").to_owned();
            forms.parameters = form.get("parameters").to_owned();
            forms.template_key.clone_from(&key);
            match parameters(&forms.parameters) {
                Ok(p) => (Kind::Template, json!({"template": forms.template, "parameters": p})),
                Err(error) => {
                    forms.error = Some(Refusal { kind: Kind::Template, field: Some("parameters"), error });
                    return list(ctx, &forms, StatusCode::BAD_REQUEST).await;
                }
            }
        }
        "recipe" => {
            // Browsers send a textarea's lines with CRLF; a recipe's lines end in LF.
            forms.meta_yml = form.get("meta_yml").replace("\r\n", "\n");
            forms.steps = form.get("steps").replace("\r\n", "\n");
            forms.group = form.get("group").trim().to_owned();
            forms.overwrite = form.checked("overwrite");
            forms.recipe_key.clone_from(&key);
            let mut body = json!({"recipe": {"meta_yml": forms.meta_yml, "steps": forms.steps}});
            if !forms.group.is_empty() {
                body["group"] = json!(forms.group);
            }
            if forms.overwrite {
                body["overwrite"] = json!(true);
            }
            (Kind::Recipe, body)
        }
        _ => return Err(super::bad_request("this form names no kind of job")),
    };
    match post_job(ctx, &key, &body).await {
        Ok(id) => Ok(guard::redirect(&format!("{BASE}/jobs/{}", segment(&id)))),
        Err(error) => {
            // Refused: what is sent next is another request, so it gets another key. A server
            // failure keeps it, so resending the same form finds a job the failure hid.
            if !error.status.is_server_error() {
                match kind {
                    Kind::Template => forms.template_key = new_key(),
                    Kind::Recipe => forms.recipe_key = new_key(),
                }
            }
            let status = error.status;
            forms.error = Some(Refusal { kind, field: field_of(kind, &error), error });
            list(ctx, &forms, status).await
        }
    }
}

/// `name=value` lines (blank lines skipped) as the API's `parameters` object.
fn parameters(text: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let refuse = |why: &str| ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_field".into(),
            message: format!("line {}: {why}", n + 1),
            field: Some("parameters".into()),
        };
        let (name, value) = line.split_once('=').ok_or_else(|| refuse("write it as name=value"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(refuse("the parameter's name is missing before '='"));
        }
        if out.insert(name.to_owned(), value.trim().to_owned()).is_some() {
            return Err(refuse(&format!("parameter '{name}' is given twice")));
        }
    }
    Ok(out)
}

/// Submits, with the form's key; returns the job's id.
async fn post_job(ctx: &Ctx<'_>, key: &str, body: &Value) -> Result<String, ApiError> {
    let mut attempts = 0;
    loop {
        let mut call = ctx.api(Method::POST, "/jobs").json(body);
        if !key.is_empty() {
            call = call.header(HeaderName::from_static("idempotency-key"), key);
        }
        match call.send().await {
            Ok(answer) => return Ok(answer.json::<JobView>()?.id),
            // A double submit: the first post with this key is still being made, and its
            // answer, the same job, comes shortly.
            Err(e) if e.status == StatusCode::CONFLICT && e.code == "conflict" && !key.is_empty() && attempts < 20 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e),
        }
    }
}
