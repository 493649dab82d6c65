//! The job record, its phase and its client view, and what a submission asks for.

use serde::{Deserialize, Serialize};

use crate::recipe::{Output, Recipe};
use crate::templates::RegisteredTemplate;
use portico_core::Config;
use portico_core::directory::rfc3339;
use portico_core::quotas::Resources;

/// A job's phase: Portico's `Submitting`, then Argo's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Phase {
    Submitting,
    Pending,
    Running,
    Succeeded,
    Failed,
    Error,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Submitting => "Submitting",
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Error => "Error",
        }
    }

    /// Argo's phase name; an empty or unknown one (the controller has not seen it) is Pending.
    pub(super) fn from_argo(phase: &str) -> Phase {
        match phase {
            "Running" => Phase::Running,
            "Succeeded" => Phase::Succeeded,
            "Failed" => Phase::Failed,
            "Error" => Phase::Error,
            _ => Phase::Pending,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::Error)
    }
}

/// A job as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub owner: String,
    pub group: String,
    /// The recipe's id (`seal-tags-demo`).
    pub recipe: String,
    pub workflow: String,
    pub phase: Phase,
    pub message: String,
    pub progress: String,
    /// Epoch seconds.
    pub created_at: i64,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// A recipe's output; `None` for a registered template (`recipe` names it), whose outputs
    /// it decides itself.
    pub output: Option<Output>,
    /// What the job holds of the owner's quota while unfinished.
    pub resources: Resources,
}

/// A job as clients see it (`GET /jobs/{id}`, listings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: String,
    pub owner: String,
    pub group: String,
    pub recipe: String,
    /// `recipe` or `template`.
    #[schema(example = "recipe")]
    pub kind: String,
    pub workflow: String,
    pub phase: Phase,
    pub message: String,
    pub progress: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub output: JobOutput,
    pub resources: Resources,
}

/// Where a job's output is: `pvc` (`volume`, `path`), `temporary` (once succeeded, `GET
/// /jobs/{id}/output` answers a presigned `url` valid `expires_in` seconds) or `template`
/// (`note`: the template decides).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobOutput {
    #[serde(rename = "type")]
    #[schema(example = "temporary")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Job {
    /// Where the job's output goes, as clients see it (a `temporary` output's download link is
    /// [`Jobs::output`](super::Jobs::output)'s).
    pub fn output_view(&self, config: &Config) -> JobOutput {
        match self.output {
            None => JobOutput {
                kind: "template".into(),
                note: Some("the template decides where its outputs go".into()),
                ..JobOutput::default()
            },
            Some(Output::Temporary) => JobOutput { kind: "temporary".into(), ..JobOutput::default() },
            Some(_) => JobOutput {
                kind: "pvc".into(),
                volume: Some(config.job_volume_claim.clone()),
                path: Some(format!("recipes/{}", self.recipe)),
                ..JobOutput::default()
            },
        }
    }

    /// What clients see.
    pub fn view(&self, config: &Config) -> JobView {
        JobView {
            id: self.id.clone(),
            owner: self.owner.clone(),
            group: self.group.clone(),
            recipe: self.recipe.clone(),
            kind: if self.output.is_none() { "template" } else { "recipe" }.into(),
            workflow: self.workflow.clone(),
            phase: self.phase,
            message: self.message.clone(),
            progress: self.progress.clone(),
            created_at: rfc3339(self.created_at),
            started_at: self.started_at.clone(),
            finished_at: self.finished_at.clone(),
            output: self.output_view(config),
            resources: self.resources,
        }
    }
}

/// What a job runs.
pub enum Work<'r> {
    /// An OGDC shell recipe, as the workflow Portico writes for it; `overwrite` replaces an
    /// earlier `pvc` publication.
    Recipe { recipe: &'r Recipe, overwrite: bool },
    /// A registered template with checked parameter values.
    Template { template: &'r RegisteredTemplate, values: Vec<(String, String)> },
}

/// What `POST /jobs` asks for, checked.
pub struct Submission<'r> {
    pub owner: &'r str,
    pub group: &'r str,
    pub work: Work<'r>,
    /// Requested cpu / memory / storage (`jobs` is always 1).
    pub resources: Resources,
    /// The owner's limits.
    pub limits: Resources,
    /// `Idempotency-Key` and a digest of the request it came with.
    pub idempotency: Option<(&'r str, String)>,
}
