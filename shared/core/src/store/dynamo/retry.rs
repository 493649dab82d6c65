//! How a DynamoDB call is tried: the [`Patience`] settings, and the attempts loop with its
//! classification of failures (which are worth another attempt).

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::Config;
use crate::store::StoreError;

/// How long DynamoDB calls may take and how often each is tried (the `dynamodb_*` settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Patience {
    /// Longest wait to open a connection.
    pub connect: Duration,
    /// Longest wait for one attempt's answer.
    pub attempt: Duration,
    /// Longest time one call takes, its attempts and the pauses between them included.
    pub total: Duration,
    /// Attempts of one call (1: no retry).
    pub attempts: u32,
}

impl Patience {
    pub fn of(config: &Config) -> Patience {
        Patience {
            connect: Duration::from_millis(config.dynamodb_connect_timeout_ms),
            attempt: Duration::from_millis(config.dynamodb_attempt_timeout_ms),
            total: Duration::from_millis(config.dynamodb_timeout_ms),
            attempts: config.dynamodb_max_attempts.max(1),
        }
    }
}

impl Default for Patience {
    fn default() -> Self {
        Patience::of(&Config::default())
    }
}

/// What one attempt of a call came to: an answer (or a failure no retry mends), or a failure
/// that another attempt may not meet.
pub(super) enum Step<T> {
    Done(Result<T, StoreError>),
    Again(String),
}

/// Runs `attempt` (given its number, from 1) until it is done, at most `attempts` times
/// within `total`, pausing a little longer each time; then [`StoreError::Unavailable`].
pub(super) async fn call<T, F, Fut>(p: Patience, what: &str, attempt: F) -> Result<T, StoreError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Step<T>>,
{
    use tracing::Instrument as _;
    // One span per call, retries inside it: a slow request shows which store call took its time.
    let span = tracing::info_span!("dynamodb", op = what, attempts = tracing::field::Empty);
    attempts(p, what, attempt).instrument(span).await
}

async fn attempts<T, F, Fut>(p: Patience, what: &str, mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Step<T>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(20);
    let mut last = String::from("no attempt fitted in the time allowed");
    let mut made = 0;
    for n in 1..=p.attempts {
        let left = p.total.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        made = n;
        tracing::Span::current().record("attempts", n);
        match tokio::time::timeout(left.min(p.attempt), attempt(n)).await {
            Ok(Step::Done(result)) => return result,
            Ok(Step::Again(why)) => last = why,
            Err(_) => last = format!("no answer within {} ms", left.min(p.attempt).as_millis()),
        }
        if n < p.attempts {
            // Full jitter: concurrent callers hit by one fault do not come back together.
            let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as u32;
            let wait = (pause * jitter / 1000).min(p.total.saturating_sub(started.elapsed()));
            tokio::time::sleep(wait).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
    Err(StoreError::Unavailable(format!("DynamoDB {what}: {last} ({made} attempt(s))")))
}

/// Why a failed call may succeed if made again, or `None` if it will not: the network, a
/// timeout, an unreadable answer, throttling and DynamoDB's own 5xx are worth another attempt.
fn transient<E: ProvideErrorMetadata + std::error::Error + 'static>(err: &SdkError<E, HttpResponse>) -> Option<String> {
    match err {
        SdkError::TimeoutError(_) => Some("the attempt timed out".into()),
        SdkError::DispatchFailure(f) if !f.is_user() => Some(format!("not reached: {}", DisplayErrorContext(err))),
        SdkError::ResponseError(_) => Some(format!("no readable answer: {}", DisplayErrorContext(err))),
        SdkError::ServiceError(service) => {
            let code = err.code().unwrap_or_default();
            let retryable = matches!(
                code,
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
            ) || service.raw().status().is_server_error();
            retryable.then(|| format!("DynamoDB answered {code} ({})", service.raw().status().as_u16()))
        }
        _ => None,
    }
}

pub(super) fn backend<E: ProvideErrorMetadata + std::error::Error + 'static>(
    err: SdkError<E, HttpResponse>,
) -> StoreError {
    StoreError::Backend(DisplayErrorContext(err).to_string())
}

/// An attempt's failure: another attempt if it may help, else the end.
pub(super) fn failed<T, E: ProvideErrorMetadata + std::error::Error + 'static>(
    err: SdkError<E, HttpResponse>,
) -> Step<T> {
    match transient(&err) {
        Some(why) => Step::Again(why),
        None => Step::Done(Err(backend(err))),
    }
}

/// An attempt's result.
pub(super) fn step<T, E: ProvideErrorMetadata + std::error::Error + 'static>(
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Step<T> {
    match result {
        Ok(out) => Step::Done(Ok(out)),
        Err(err) => failed(err),
    }
}
