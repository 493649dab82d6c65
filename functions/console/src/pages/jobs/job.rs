//! One job: its facts, its phase kept fresh by the script while it runs, its logs, its output
//! and a cancel button while it is unfinished.

use http::{Method, StatusCode};
use maud::{Markup, html};
use portico_core::web::{self, ApiResponse};
use serde_json::json;

use portico_jobs::service::{JobOutput, Phase};

use super::{JobView, kind_label, phase};
use crate::Ctx;
use crate::backend::ApiError;
use crate::guard::{self, BASE, segment};
use crate::layout::{alert, csrf_field, html_response, page, when};

fn api_path(id: &str) -> String {
    format!("/jobs/{}", segment(id))
}

fn page_path(id: &str) -> String {
    format!("{BASE}/jobs/{}", segment(id))
}

pub async fn show(ctx: &Ctx<'_>, id: &str, error: Option<&ApiError>) -> Result<ApiResponse, ApiError> {
    let job: JobView = ctx.api(Method::GET, api_path(id)).send().await?.json()?;
    // The logs are shown as far as the engine has them; without them the page still helps.
    let logs = ctx.api(Method::GET, format!("{}/logs", api_path(id))).send().await;
    let here = page_path(&job.id);
    let status_url = format!("{here}/status");
    let body = html! {
        (alert(error))
        dl {
            dt { "Job" } dd { code { (job.id) } }
            dt { (kind_label(&job)) } dd { (job.recipe) }
            dt { "Phase" } dd { (phase(&job, Some(&status_url))) }
            @if !job.progress.is_empty() { dt { "Progress" } dd { (job.progress) " steps" } }
            @if !job.message.is_empty() { dt { "Message" } dd { (job.message) } }
            dt { "Owner" } dd { (job.owner) }
            dt { "Group" } dd { (job.group) }
            dt { "Submitted" } dd { (when(&job.created_at)) }
            @if let Some(t) = &job.started_at { dt { "Started" } dd { (when(t)) } }
            @if let Some(t) = &job.finished_at { dt { "Finished" } dd { (when(t)) } }
            dt { "Output" } dd { (output_facts(&job.output)) }
        }
        // A template's outputs are its own business: nothing to link to.
        @if job.phase == Phase::Succeeded && job.output.kind != "template" {
            p { a href={ (here) "/output" } { (output_link_text(&job.output)) } }
        }
        @if !job.phase.is_final() {
            form method="post" action={ (here) "/cancel" } {
                (csrf_field(&ctx.viewer))
                button.danger type="submit" data-confirm="Cancel this job? Its work so far is lost." { "Cancel the job" }
            }
        }
        h2 id="logs" { "Logs" }
        @match &logs {
            Ok(a) if !a.text.trim().is_empty() => pre aria-labelledby="logs" tabindex="0" { (a.text) },
            Ok(_) => p.hint { "No logs yet." },
            Err(e) => p.hint { "The logs cannot be shown now: " (e.message) },
        }
        p { a href={ (BASE) "/jobs" } { "All my jobs" } }
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    Ok(html_response(status, page(&format!("Job {}", job.recipe), Some(&ctx.viewer), body)))
}

/// Where a job's output goes, as `GET /jobs/{id}` describes it.
fn output_facts(output: &JobOutput) -> Markup {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    html! {
        @match output.kind.as_str() {
            "temporary" => "a zip to download once the job succeeded",
            "pvc" => { "volume " code { (text(&output.volume)) } ", path " code { (text(&output.path)) } },
            _ => (text(&output.note)),
        }
    }
}

fn output_link_text(output: &JobOutput) -> &'static str {
    if output.kind == "temporary" { "Download the output" } else { "Where the output is" }
}

/// `{"phase", "finished"}` for the script; a refusal as the API's JSON error.
pub async fn status(ctx: &Ctx<'_>, id: &str) -> Result<ApiResponse, ApiError> {
    Ok(match ctx.api(Method::GET, api_path(id)).send().await {
        Ok(answer) => {
            let job: JobView = answer.json()?;
            web::json(StatusCode::OK, &json!({"phase": job.phase, "finished": job.phase.is_final()}))
        }
        Err(e) => e.json_response(),
    })
}

/// A temporary output: to the API's presigned link. Else where the output is.
pub async fn output(ctx: &Ctx<'_>, id: &str) -> Result<ApiResponse, ApiError> {
    let (output, error) = match ctx.api(Method::GET, format!("{}/output", api_path(id))).send().await {
        Ok(answer) => (answer.json::<JobOutput>()?, None),
        // Not yet (409), expired or gone (404): said on the page, with the way back.
        Err(e) if e.status.is_client_error() => (JobOutput::default(), Some(e)),
        Err(e) => return Err(e),
    };
    // The link is the API's own (presigned by Portico), never a value a request supplied.
    if let Some(url) = output.url.as_deref().filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
        return Ok(guard::redirect(url));
    }
    let body = html! {
        (alert(error.as_ref()))
        @if error.is_none() {
            p { "Where the output of job " code { (id) } " is:" }
            dl {
                dt { "Kind" } dd { (output.kind) }
                @if let Some(v) = &output.volume { dt { "Volume" } dd { code { (v) } } }
                @if let Some(p) = &output.path { dt { "Path" } dd { code { (p) } } }
                @if let Some(n) = &output.note { dt { "Note" } dd { (n) } }
            }
        }
        p { a href=(page_path(id)) { "Back to the job" } }
    };
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    Ok(html_response(status, page("Job output", Some(&ctx.viewer), body)))
}

pub async fn cancel(ctx: &Ctx<'_>, id: &str) -> Result<ApiResponse, ApiError> {
    match ctx.api(Method::DELETE, api_path(id)).send().await {
        Ok(_) => Ok(guard::redirect(&page_path(id))),
        // Already finished, say: the job's page says so.
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => show(ctx, id, Some(&e)).await,
        Err(e) => Err(e),
    }
}
