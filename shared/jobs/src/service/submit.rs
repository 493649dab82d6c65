//! Submitting a job (idempotency key, marker, quota, record, workflow) and giving back what a
//! job that will not run, or has ended, holds.

use serde_json::Value;

use super::keys::{Claim, idempotency_key};
use super::{Job, Jobs, Phase, Submission, Work, active_key, active_marker, job_item};
use crate::engine::EngineError;
use crate::workflow;
use portico_core::Error;
use portico_core::quotas::{Quotas, Resources};
use portico_core::store::{Condition, now_epoch};

impl Jobs<'_> {
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
    pub(super) async fn unhold(&self, owner: &str, id: &str, resources: &Resources) {
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
    pub(super) async fn finish(&self, job: &Job) {
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
}
