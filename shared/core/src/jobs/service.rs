//! Jobs: submit (idempotent, quota-bound), read (refreshed from the engine), list, cancel,
//! logs, and the reconciler's sweep over unfinished jobs.
//!
//! Storage: jobs at `pk = "JOBS#<first hex digit of the id>"`, `sk = <id>` (sixteen
//! partitions, listed by administrators shard after shard;
//! index `gsi1` = `JOBS_OF#<user>` lists a user's own; a finished job expires
//! `job_history_ttl` later); a marker per unfinished job at `ACTIVE_JOBS` / `<id>`, with its
//! `since` (what the reconciler reads, so its work follows what is running, not the history);
//! idempotency records at `IDEM#<user>` / `<key>` (TTL `idempotency_ttl`).
//!
//! The workflow's name is fixed by the job id, and an `Idempotency-Key` keeps its job id
//! across retries: a retry after a lost answer finds the workflow the first attempt created
//! (Argo's 409, read back and recognized by its label) instead of creating a second one.

mod keys;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::engine::{EngineError, WorkflowEngine};
use super::output::{ArtifactLocation, OutputLinks};
use super::recipe::{Output, Recipe};
use super::templates::RegisteredTemplate;
use super::workflow::{self, WorkflowSettings};
use crate::directory::rfc3339;
use crate::quotas::{Quotas, Resources};
use crate::store::sharded::Sharded;
use crate::store::{Condition, Cursor, Item, Key, Query, StoreError, Table, now_epoch};
use crate::{Config, Error};
use keys::{Claim, idempotency_key};

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
    fn from_argo(phase: &str) -> Phase {
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
    /// [`Jobs::output`]'s).
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

/// Job operations over the table and the engine.
pub struct Jobs<'a> {
    pub table: &'a dyn Table,
    pub engine: &'a dyn WorkflowEngine,
    pub config: &'a Config,
    /// Download links for `temporary` outputs; `None` where none can be made.
    pub links: Option<&'a dyn OutputLinks>,
}

/// Jobs, over sixteen partitions by their id's first hex digit.
const JOBS: Sharded = Sharded::new("JOBS");

fn job_key(id: &str) -> Key {
    JOBS.key(id)
}

fn active_key(id: &str) -> Key {
    Key::new(ACTIVE_PARTITION, id)
}

const ACTIVE_PARTITION: &str = "ACTIVE_JOBS";

/// Seconds after which a job still `Submitting`, or an active marker still without its job, is
/// taken to be left by a submission that crashed half-way (no submission takes this long).
const STALE_SUBMISSION: i64 = 120;

fn job_item(job: &Job, history_ttl: u64) -> Item {
    let mut item = Item::new(job_key(&job.id))
        .with_doc(job)
        .with_s("phase", job.phase.as_str())
        .with_s("owner", job.owner.clone())
        .with_s("recipe", job.recipe.clone());
    item.index_key = Some(Key::new(format!("JOBS_OF#{}", job.owner), format!("{:012}#{}", job.created_at, job.id)));
    if job.phase.is_final() {
        item.expires_at = Some(now_epoch() + history_ttl as i64);
    }
    item
}

fn job_from(item: &Item) -> Result<Job, Error> {
    item.doc()
}

/// A job's active marker: when it was made, by whom, and what the job holds.
fn active_marker(job: &Job) -> Item {
    let mut item = Item::new(active_key(&job.id)).with_n("since", job.created_at).with_s("owner", job.owner.clone());
    for (name, amount) in job.resources.fields() {
        item = item.with_n(name, amount);
    }
    item
}

impl From<EngineError> for Error {
    fn from(e: EngineError) -> Self {
        let status = match e {
            EngineError::Timeout(_) => http::StatusCode::GATEWAY_TIMEOUT,
            EngineError::Unavailable(_) => http::StatusCode::SERVICE_UNAVAILABLE,
            _ => http::StatusCode::BAD_GATEWAY,
        };
        Error::Upstream { status, message: e.to_string() }
    }
}

impl Jobs<'_> {
    fn settings(&self) -> WorkflowSettings {
        let c = self.config;
        WorkflowSettings {
            namespace: c.argo_namespace.clone(),
            service_account: c.job_service_account.clone(),
            image: c.job_image.clone(),
            volume_claim: c.job_volume_claim.clone(),
            ttl_seconds: c.job_ttl,
            ttl_temporary_seconds: c.job_ttl_temporary,
            parallelism: c.job_parallelism,
        }
    }

    /// The stored job and its revision. 1 read.
    pub async fn get(&self, id: &str) -> Result<(Job, String), Error> {
        let not_found = || Error::NotFound(format!("job '{id}' does not exist"));
        if id.is_empty() || id.len() > 64 {
            return Err(not_found());
        }
        let item = self.table.get(&job_key(id)).await?.ok_or_else(not_found)?;
        Ok((job_from(&item)?, item.rev))
    }

    /// Submits a recipe: idempotency record, the job's active marker (naming the owner and what
    /// the job holds, so that a submission that fails half-way is found by the reconciler even
    /// if its own clean-up cannot reach the store), the quota (held by the job's id), the job
    /// record, then the workflow. Returns the job and whether it is an earlier submission
    /// replayed (same key, same request). Refusals change nothing; a failure gives back exactly
    /// what was taken and leaves the key retryable.
    pub async fn submit(&self, s: Submission<'_>) -> Result<(Job, bool), Error> {
        // Checked before anything is written: a refusal leaves no key, marker or reservation.
        let held = Resources { jobs: 1, ..s.resources };
        held.validate()?;
        let mut job_id = uuid::Uuid::new_v4().to_string();
        let mut retrying = false;
        if let Some((key, digest)) = &s.idempotency {
            match self.claim_key(s.owner, key, digest, &job_id).await? {
                Claim::Fresh => {}
                Claim::Retry(previous) => (job_id, retrying) = (previous, true),
                Claim::Done(previous) => return Ok((self.get(&previous).await?.0, true)),
            }
        }
        // A refusal before the engine is asked frees a fresh key; a retried one stays bound
        // to its job id, whose workflow an earlier attempt may have created.
        let release_key = || async {
            if let Some((key, digest)) = &s.idempotency {
                if retrying {
                    self.record_key(s.owner, key, digest, &job_id, "retry").await;
                } else {
                    let _ = self.table.delete(&idempotency_key(s.owner, key), Condition::Always).await;
                }
            }
        };
        let mut job = Job {
            id: job_id.clone(),
            owner: s.owner.to_owned(),
            group: s.group.to_owned(),
            recipe: match &s.work {
                Work::Recipe { recipe, .. } => recipe.meta.id(),
                Work::Template { template, .. } => template.name.clone(),
            },
            workflow: workflow::workflow_name(&job_id),
            phase: Phase::Submitting,
            message: String::new(),
            progress: String::new(),
            created_at: now_epoch(),
            started_at: None,
            finished_at: None,
            output: match &s.work {
                Work::Recipe { recipe, .. } => Some(recipe.meta.output),
                Work::Template { .. } => None,
            },
            resources: held,
        };
        // The marker first: an unfinished job the reconciler cannot see could hold quota
        // forever.
        if let Err(e) = self.table.put(active_marker(&job), Condition::Always).await {
            // It may have landed unseen. It holds nothing yet; if it stays, the reconciler
            // removes it. (A retried job's marker stays: it may hold what the job holds.)
            if !retrying {
                let _ = self.table.delete(&active_key(&job.id), Condition::Always).await;
            }
            release_key().await;
            return Err(e.into());
        }
        // A retried job that is still unfinished holds its quota already (an attempt that
        // crashed after reserving): reserving for the same job takes nothing more.
        if let Err(e) = Quotas::new(self.table).reserve_for(s.owner, &job.id, &held, &s.limits).await {
            if matches!(e, Error::QuotaExceeded(_)) {
                let _ = self.table.delete(&active_key(&job.id), Condition::Always).await;
            } else {
                // The reservation may have landed unseen: give it back if it did.
                self.unhold(&job.owner, &job.id, &held).await;
            }
            release_key().await;
            return Err(e);
        }
        if let Err(e) = self.table.put(job_item(&job, self.config.job_history_ttl), Condition::Always).await {
            // The record may have landed unseen: it ends as not submitted.
            job.phase = Phase::Error;
            job.message = "not submitted: the store could not be reached".into();
            self.finish(&job).await;
            release_key().await;
            return Err(e.into());
        }
        let key = s.idempotency.as_ref().map(|(k, _)| *k);
        let attempt = match &s.work {
            Work::Recipe { recipe, overwrite } => {
                let spec = workflow::shell_workflow(&job.id, recipe, &self.settings(), key, *overwrite);
                self.engine.create(&spec).await
            }
            Work::Template { template, values } => {
                let labels = [(workflow::JOB_LABEL.to_owned(), job.id.clone())];
                self.engine.submit_template(&template.workflow_template, &job.workflow, &labels, values).await
            }
        };
        let created = match attempt {
            Err(EngineError::AlreadyExists) => self.recognize(&job).await,
            other => other,
        };
        match created {
            Ok(()) => {
                job.phase = Phase::Pending;
                // The workflow runs: if this write fails the job stays `Submitting`, holding its
                // quota, until a read or the reconciler asks the engine (its key is retryable
                // once stale, and finds the workflow).
                self.table.put(job_item(&job, self.config.job_history_ttl), Condition::Always).await?;
                if let Some((key, digest)) = &s.idempotency {
                    self.record_key(s.owner, key, digest, &job.id, "done").await;
                }
                tracing::info!(job = %job.id, workflow = %job.workflow, "job submitted");
                Ok((job, false))
            }
            Err(e) => {
                job.phase = Phase::Error;
                job.message = format!("not submitted: {e}");
                self.finish(&job).await;
                if let Some((key, digest)) = &s.idempotency {
                    self.record_key(s.owner, key, digest, &job.id, "retry").await;
                }
                Err(e.into())
            }
        }
    }

    /// Gives back what job `id` of `owner` holds, if it holds it, then removes its marker (left
    /// for the reconciler if the store cannot be reached).
    async fn unhold(&self, owner: &str, id: &str, resources: &Resources) {
        match Quotas::new(self.table).release_for(owner, id, resources).await {
            Ok(_) => {
                let _ = self.table.delete(&active_key(id), Condition::Always).await;
            }
            Err(e) => tracing::warn!(job = %id, error = %e, "releasing a job's quota failed; the reconciler will"),
        }
    }

    /// Argo answered 409: the workflow is this job's if it carries the job's label (an
    /// earlier attempt created it); anything else is a real conflict.
    async fn recognize(&self, job: &Job) -> Result<(), EngineError> {
        let found = self.engine.get(&job.workflow).await?;
        match found.labels.get(workflow::JOB_LABEL) {
            Some(Value::String(id)) if *id == job.id => Ok(()),
            _ => Err(EngineError::Refused {
                status: 409,
                message: "a workflow of that name belongs to something else".into(),
            }),
        }
    }

    /// Records the final state of a job that will not run (or has ended): quota released (if
    /// held), marker removed. 3 writes. The marker stays while the quota is not known to be
    /// back, so the reconciler finishes what fails here.
    async fn finish(&self, job: &Job) {
        let stored = self.table.put(job_item(job, self.config.job_history_ttl), Condition::Always).await;
        let released = Quotas::new(self.table).release_for(&job.owner, &job.id, &job.resources).await;
        let unmarked = match (&stored, &released) {
            (Ok(_), Ok(_)) => self.table.delete(&active_key(&job.id), Condition::Always).await.map(|_| ()),
            _ => Ok(()),
        };
        if stored.is_err() || released.is_err() || unmarked.is_err() {
            tracing::warn!(job = %job.id, "recording the end of a job failed; the reconciler will retry");
        }
    }

    /// The job, its phase refreshed from the engine while unfinished: 1 read, plus 1 engine
    /// read and (on a change) 1 write; reaching a final phase releases the quota, once.
    pub async fn refresh(&self, id: &str) -> Result<Job, Error> {
        let (job, rev) = self.get(id).await?;
        self.refreshed(job, rev).await
    }

    /// As [`Jobs::refresh`], for a job already read (at `rev`): no second read.
    pub async fn refreshed(&self, job: Job, rev: String) -> Result<Job, Error> {
        let id = job.id.clone();
        // A submission is given time to finish; one older than that crashed half-way, and the
        // engine says whether its workflow exists.
        let submitting = job.phase == Phase::Submitting && now_epoch() - job.created_at < STALE_SUBMISSION;
        if job.phase.is_final() || submitting {
            return Ok(job);
        }
        let info = match self.engine.get(&job.workflow).await {
            Ok(info) => info,
            Err(EngineError::NotFound) => {
                let mut gone = job.clone();
                gone.phase = Phase::Error;
                gone.message = "the workflow is gone from the engine".into();
                return self.settle(job, gone, rev).await;
            }
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "job status not refreshed");
                return Ok(job);
            }
        };
        let mut fresh = job.clone();
        fresh.phase = Phase::from_argo(&info.status.phase);
        fresh.message = info.status.message;
        fresh.progress = info.status.progress;
        fresh.started_at = info.status.started_at.or(fresh.started_at);
        fresh.finished_at = info.status.finished_at.or(fresh.finished_at);
        if fresh == job {
            return Ok(job);
        }
        self.settle(job, fresh, rev).await
    }

    /// Writes `fresh` over `before` (at `rev`); the writer that makes it final releases.
    async fn settle(&self, before: Job, fresh: Job, rev: String) -> Result<Job, Error> {
        match self.table.put(job_item(&fresh, self.config.job_history_ttl), Condition::Rev(rev)).await {
            Ok(_) => {
                if fresh.phase.is_final() && !before.phase.is_final() {
                    self.unhold(&fresh.owner, &fresh.id, &fresh.resources).await;
                    tracing::info!(job = %fresh.id, phase = fresh.phase.as_str(), "job finished");
                }
                Ok(fresh)
            }
            // Someone else recorded a change first: theirs stands.
            Err(StoreError::ConditionFailed { .. }) => Ok(self.get(&fresh.id).await?.0),
            Err(e) => Err(e.into()),
        }
    }

    /// Stops the job's workflow and ends it: quota released. A finished job is a 409. `job` is
    /// as read at `rev` (the caller read it to check who may cancel): no second read.
    pub async fn cancel(&self, job: Job, rev: String, by: &str) -> Result<Job, Error> {
        if job.phase.is_final() {
            return Err(Error::Conflict(format!("job '{}' has already finished ({})", job.id, job.phase.as_str())));
        }
        match self.engine.stop(&job.workflow).await {
            Ok(()) | Err(EngineError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        let mut stopped = job.clone();
        stopped.phase = Phase::Failed;
        stopped.message = format!("cancelled by {by}");
        self.settle(job, stopped, rev).await
    }

    /// The workflow's logs, at most `job_log_max_bytes`.
    pub async fn logs(&self, job: &Job) -> Result<String, Error> {
        Ok(self.engine.logs(&job.workflow, self.config.job_log_max_bytes).await?)
    }

    /// Where the job's output is: a `pvc` sub-path, or for a `temporary` output of a job that
    /// succeeded, a download link valid `job_output_link_ttl` seconds. 1 engine read.
    pub async fn output(&self, job: &Job) -> Result<JobOutput, Error> {
        if job.output != Some(Output::Temporary) {
            return Ok(job.output_view(self.config));
        }
        if job.phase != Phase::Succeeded {
            return Err(Error::Conflict(format!("job '{}' has no output: it is {}", job.id, job.phase.as_str())));
        }
        let stored = self.engine.output_artifact(&job.workflow).await?.ok_or_else(|| {
            Error::NotFound(format!("the engine reports no output artifact for job '{}' (expired?)", job.id))
        })?;
        let bucket = stored
            .bucket
            .or_else(|| self.config.job_output_bucket.clone())
            .ok_or_else(|| Error::Unavailable("the output's bucket is unknown: set job_output_bucket".into()))?;
        let links = self.links.ok_or_else(|| Error::Unavailable("no download links can be made here".into()))?;
        let ttl = self.config.job_output_link_ttl;
        let url =
            links.link(&ArtifactLocation { bucket, key: stored.key }, std::time::Duration::from_secs(ttl)).await?;
        Ok(JobOutput { kind: "temporary".into(), url: Some(url), expires_in: Some(ttl), ..JobOutput::default() })
    }

    /// A page of the owner's jobs, oldest first. 1 query (index: eventually consistent).
    pub async fn list_owned(
        &self,
        owner: &str,
        limit: u32,
        after: Option<Cursor>,
    ) -> Result<(Vec<Job>, Option<Cursor>), Error> {
        let mut q = Query::index(format!("JOBS_OF#{owner}"), limit);
        q.after = after;
        let page = self.table.query(&q).await?;
        Ok((page.items.iter().map(job_from).collect::<Result<_, _>>()?, page.next))
    }

    /// A page of every job in id order, optionally filtered by phase, recipe or owner: 1
    /// query when the page ends inside a shard, at most 16 (see [`Sharded::list`]).
    pub async fn list_all(
        &self,
        filters: Vec<(String, String)>,
        limit: u32,
        after: Option<Cursor>,
    ) -> Result<(Vec<Job>, Option<Cursor>), Error> {
        let (items, next) = JOBS.list(self.table, &filters, limit, after.as_ref()).await?;
        Ok((items.iter().map(job_from).collect::<Result<_, _>>()?, next))
    }

    /// Refreshes every unfinished job (reading only the markers of unfinished jobs), so
    /// finished ones release their quota even when nobody polls. Returns how many finished.
    pub async fn reconcile(&self) -> Result<usize, Error> {
        let now = now_epoch();
        let mut finished = 0;
        let mut after = None;
        loop {
            let mut q = Query::table(ACTIVE_PARTITION, 100);
            q.after = after;
            let page = self.table.query(&q).await?;
            for marker in &page.items {
                let id = &marker.key.sk;
                let refreshed = match self.get(id).await {
                    // Finished, but giving back its quota or removing the marker failed then.
                    Ok((job, _)) if job.phase.is_final() => {
                        self.unhold(&job.owner, &job.id, &job.resources).await;
                        continue;
                    }
                    Ok((job, rev)) => self.refreshed(job, rev).await,
                    Err(e) => Err(e),
                };
                match refreshed {
                    Ok(job) if job.phase.is_final() => finished += 1,
                    Ok(_) => {}
                    // A marker without its job: a submission that failed half-way, or one still
                    // in progress (the marker is written before the job): only an old one goes,
                    // with whatever it took.
                    Err(Error::NotFound(_)) => {
                        if marker.n("since").is_none_or(|since| now - since >= STALE_SUBMISSION) {
                            match marker.s("owner") {
                                // The marker holds what its job holds (see `active_marker`).
                                Some(owner) => self.unhold(owner, id, &Resources::from_item(marker)).await,
                                None => {
                                    let _ = self.table.delete(&marker.key, Condition::Always).await;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(job = %id, error = %e, "reconciling a job failed"),
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(finished),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(output: Option<Output>) -> Job {
        Job {
            id: "j".into(),
            owner: "ada".into(),
            group: "jobs".into(),
            recipe: "reproject".into(),
            workflow: "portico-j".into(),
            phase: Phase::Pending,
            message: String::new(),
            progress: String::new(),
            created_at: 1_700_000_000,
            started_at: None,
            finished_at: None,
            output,
            resources: Resources::default(),
        }
    }

    #[test]
    fn records_read_back_as_written() {
        for output in [None, Some(Output::Pvc), Some(Output::Temporary)] {
            let written = job(output);
            assert_eq!(job_from(&job_item(&written, 60)).unwrap(), written);
        }
    }

    #[test]
    fn the_view_tells_a_templates_output_from_a_recipes() {
        let config = Config::default();
        let view = |output| serde_json::to_value(job(output).view(&config)).unwrap();
        assert_eq!(view(None)["kind"], "template");
        assert_eq!(view(None)["output"]["type"], "template");
        assert_eq!(view(Some(Output::Temporary))["output"], json!({"type": "temporary"}));
        let pvc = view(Some(Output::Pvc));
        assert_eq!((&pvc["kind"], &pvc["output"]["path"]), (&json!("recipe"), &json!("recipes/reproject")));
        assert_eq!(pvc["created_at"], "2023-11-14T22:13:20Z");
    }
}
