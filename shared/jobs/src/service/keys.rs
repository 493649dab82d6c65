//! `Idempotency-Key`s of `POST /jobs` (as the IETF httpapi draft says): records at
//! `IDEM#<user>` / `<key>` binding a key to a request's digest and its job id, `in_flight`,
//! `retry` (the engine failed: the same job id is tried again) or `done`.

use super::{Jobs, STALE_SUBMISSION};
use portico_core::Error;
use portico_core::store::{Condition, Item, Key, StoreError, now_epoch};

pub(super) fn idempotency_key(owner: &str, key: &str) -> Key {
    Key::new(format!("IDEM#{owner}"), key)
}

impl Jobs<'_> {
    /// Takes an `Idempotency-Key` for a new request, or says what an earlier one did.
    pub(super) async fn claim_key(&self, owner: &str, key: &str, digest: &str, job_id: &str) -> Result<Claim, Error> {
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::bad_request(
                portico_core::error::codes::INVALID_FIELD,
                "header 'Idempotency-Key' must be 1 to 255 visible ASCII characters",
            ));
        }
        let now = now_epoch();
        let mut item = Item::new(idempotency_key(owner, key))
            .with_s("digest", digest)
            .with_s("job", job_id)
            .with_s("state", "in_flight")
            .with_n("since", now);
        item.expires_at = Some(now + self.config.idempotency_ttl as i64);
        let current = match self.table.put(item.clone(), Condition::Absent).await {
            Ok(_) => return Ok(Claim::Fresh),
            Err(StoreError::ConditionFailed { current: Some(current) }) => current,
            Err(StoreError::ConditionFailed { current: None }) => {
                return Err(Error::Conflict("the Idempotency-Key changed concurrently; retry".into()));
            }
            Err(e) => return Err(e.into()),
        };
        if current.s("digest") != Some(digest) {
            return Err(Error::IdempotencyMismatch(
                "this Idempotency-Key was used with a different request; use a new key".into(),
            ));
        }
        let previous = current.s("job").unwrap_or_default().to_owned();
        // An attempt still in flight long after any submission ends crashed half-way: its key
        // is taken over like a failed one (same job id, so its workflow, if any, is found).
        let abandoned = current.s("state") == Some("in_flight")
            && current.n("since").is_some_and(|since| now - since > STALE_SUBMISSION);
        let state = current.s("state");
        match state {
            Some("done") => Ok(Claim::Done(previous)),
            _ if state == Some("retry") || abandoned => {
                // The earlier attempt ended in an engine error (which may have been a lost
                // answer: its workflow may exist) or crashed: take the key over with the same job
                // id, so the workflow name is the same and `recognize` finds one it created.
                let retaken = item.with_s("job", previous.clone());
                match self.table.put(retaken, Condition::Rev(current.rev.clone())).await {
                    Ok(_) => Ok(Claim::Retry(previous)),
                    Err(StoreError::ConditionFailed { .. }) => Err(in_flight()),
                    Err(e) => Err(e.into()),
                }
            }
            _ => Err(in_flight()),
        }
    }

    pub(super) async fn record_key(&self, owner: &str, key: &str, digest: &str, job_id: &str, state: &str) {
        let mut item = Item::new(idempotency_key(owner, key))
            .with_s("digest", digest)
            .with_s("job", job_id)
            .with_s("state", state);
        item.expires_at = Some(now_epoch() + self.config.idempotency_ttl as i64);
        if self.table.put(item, Condition::Always).await.is_err() {
            tracing::warn!(job = %job_id, "recording an idempotency key failed");
        }
    }
}

pub(super) enum Claim {
    Fresh,
    Retry(String),
    Done(String),
}

fn in_flight() -> Error {
    Error::Conflict("a request with this Idempotency-Key is still in progress; retry shortly".into())
}
