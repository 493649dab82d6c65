//! The conditional read-modify-write, written once: read an item and its revision, change it,
//! write it only if the revision is still the one read. A writer that came in between makes
//! the write's condition fail; the whole attempt is then tried again, up to [`ATTEMPTS`] times
//! (2 storage calls each), after which the caller's conflict error answers.

use super::StoreError;
use crate::Error;

/// How many times a read-modify-write is tried before it gives up with a conflict.
pub const ATTEMPTS: usize = 5;

/// The attempts a read-modify-write gets: `for _ in attempts() { read; change; write }`,
/// then the caller's conflict error.
pub fn attempts() -> std::ops::Range<usize> {
    0..ATTEMPTS
}

/// A conditional write's outcome: `Some` of what it returned, `None` when its condition
/// failed (another writer came first: read again); any other failure is the caller's.
pub fn written<W>(result: Result<W, StoreError>) -> Result<Option<W>, Error> {
    match result {
        Ok(w) => Ok(Some(w)),
        Err(StoreError::ConditionFailed { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
