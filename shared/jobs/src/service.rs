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
mod model;
mod submit;

use super::engine::{EngineError, WorkflowEngine};
use super::output::{ArtifactLocation, OutputLinks};
use super::recipe::Output;
use super::workflow::WorkflowSettings;
pub use model::{Job, JobOutput, JobView, Phase, Submission, Work};
use portico_core::quotas::Resources;
use portico_core::store::sharded::Sharded;
use portico_core::store::{Condition, Cursor, Item, Key, Query, StoreError, Table, now_epoch};
use portico_core::{Config, Error};

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
mod tests;
