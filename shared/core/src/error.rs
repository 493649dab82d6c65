//! The one error type of Portico and its mapping to HTTP.
//!
//! Every failure a route can meet is an [`Error`]; [`Error::status`] and [`Error::code`] are
//! the single place where errors become HTTP. Bodies are always
//! `{"code": "...", "message": "..."}`. Server-side failures never put their detail in the
//! body: it is logged, and the client sees a generic message.

use http::{Method, StatusCode};

use crate::store::StoreError;

/// Stable machine-readable codes of client errors (the `code` field of an error body).
pub mod codes {
    pub const INVALID_JSON: &str = "invalid_json";
    pub const INVALID_BODY: &str = "invalid_body";
    pub const INVALID_FIELD: &str = "invalid_field";
    pub const SLUG_MISMATCH: &str = "slug_mismatch";
    pub const INVALID_QUERY: &str = "invalid_query";
    pub const INVALID_CURSOR: &str = "invalid_cursor";
    pub const INVALID_HEADER: &str = "invalid_header";
    /// An OGDC recipe that is malformed or not supported (`portico_jobs::recipe`).
    pub const INVALID_RECIPE: &str = "invalid_recipe";
    /// A recipe source that is malformed, not allowed, or missing (`portico_jobs::source`).
    pub const INVALID_RECIPE_SOURCE: &str = "invalid_recipe_source";

    /// Every code above (the OpenAPI document lists them).
    pub const ALL: &[&str] = &[
        INVALID_JSON,
        INVALID_BODY,
        INVALID_FIELD,
        SLUG_MISMATCH,
        INVALID_QUERY,
        INVALID_CURSOR,
        INVALID_HEADER,
        INVALID_RECIPE,
        INVALID_RECIPE_SOURCE,
    ];
}

/// A failure of a request, typed by what the client can do about it.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; `code` is one of [`codes`], `field` the request field it
    /// concerns, if one (its path: `limits.cpu`).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String, field: Option<String> },
    /// No credentials, or credentials that do not verify.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials that do not allow the action.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method {method} is not allowed here")]
    /// A known path with a method it does not serve (the router sets `Allow`).
    MethodNotAllowed { method: Method },
    /// The resource changed under the request (a lost race that retrying may win).
    #[error("{0}")]
    Conflict(String),
    /// An `If-Match` / `If-None-Match` condition did not hold.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The app cannot be streamed now (its function is not ACTIVE on the platform).
    #[error("{0}")]
    AppUnavailable(String),
    /// A reservation would exceed the user's quota.
    #[error("{0}")]
    QuotaExceeded(String),
    /// An OAuth2 token endpoint error (RFC 6749 §5.2): body `{"error", "error_description"}`.
    #[error("{description}")]
    OAuth { error: &'static str, description: String },
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The answer is larger than a Lambda response can carry; the client should ask for less.
    #[error(
        "the answer is {size} bytes, over the {limit} bytes a response can carry; ask for less (a smaller page) or accept gzip"
    )]
    ResponseTooLarge { size: usize, limit: usize },
    /// The same `Idempotency-Key` came with a different request (422, as the IETF draft says).
    #[error("{0}")]
    IdempotencyMismatch(String),
    /// An outside system (the workflow engine) failed: 502 (it refused or answered wrongly),
    /// 503 (unreachable or 5xx) or 504 (too slow). The message says which, never a secret.
    #[error("{message}")]
    Upstream { status: StatusCode, message: String },
    /// A dependency is throttling or down; the client may retry later.
    #[error("service temporarily unavailable")]
    Unavailable(String),
    /// A bug or an unexpected dependency failure. The detail is logged, never returned.
    #[error("internal error")]
    Internal(String),
}

impl Error {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Error::BadRequest { code, message: message.into(), field: None }
    }

    pub fn invalid_field(field: &str, why: impl std::fmt::Display) -> Self {
        Error::bad_field(codes::INVALID_FIELD, field, format!("field '{field}' {why}"))
    }

    /// A refusal about request field `field`, which the body names as data.
    pub fn bad_field(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Error::BadRequest { code, message: message.into(), field: Some(field.to_owned()) }
    }

    /// The request field this error concerns, if one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::BadRequest { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::QuotaExceeded(_) | Error::AppUnavailable(_) => StatusCode::CONFLICT,
            Error::OAuth { error: "invalid_client", .. } => StatusCode::UNAUTHORIZED,
            Error::OAuth { .. } => StatusCode::BAD_REQUEST,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::ResponseTooLarge { .. } => StatusCode::BAD_GATEWAY,
            Error::IdempotencyMismatch(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Upstream { status, .. } => *status,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { code, .. } => code,
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::MethodNotAllowed { .. } => "method_not_allowed",
            Error::Conflict(_) => "conflict",
            Error::PreconditionFailed(_) => "precondition_failed",
            Error::QuotaExceeded(_) => "quota_exceeded",
            Error::AppUnavailable(_) => "app_unavailable",
            Error::OAuth { error, .. } => error,
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::ResponseTooLarge { .. } => "response_too_large",
            Error::IdempotencyMismatch(_) => "idempotency_key_reused",
            Error::Upstream { status, .. } if *status == StatusCode::GATEWAY_TIMEOUT => "upstream_timeout",
            Error::Upstream { status, .. } if *status == StatusCode::SERVICE_UNAVAILABLE => "upstream_unavailable",
            Error::Upstream { .. } => "upstream_failed",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }

    /// The JSON body sent to the client.
    pub fn body(&self) -> ErrorBody {
        match self {
            Error::OAuth { error, description } => {
                ErrorBody::OAuth(OAuthError { error: (*error).into(), error_description: description.clone() })
            }
            _ => ErrorBody::Portico(PorticoError {
                code: self.code().into(),
                message: self.to_string(),
                field: self.field().map(str::to_owned),
            }),
        }
    }
}

/// An error's body: Portico's own, or the OAuth2 token endpoint's.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum ErrorBody {
    Portico(PorticoError),
    OAuth(OAuthError),
}

/// The body as JSON text.
impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| std::fmt::Error)?)
    }
}

/// The error body of every route but the OAuth2, OGDC and RPC ones.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct PorticoError {
    /// One of the codes the response's status lists.
    #[schema(schema_with = error_code_ref)]
    pub code: String,
    /// What went wrong, naming the field; never a submitted value.
    pub message: String,
    /// The request field the error concerns, when it concerns one (its path: `limits.cpu`,
    /// `recipe.meta_yml`), for clients that show the error beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
}

fn error_code_ref() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::Ref::from_schema_name("ErrorCode").into()
}

/// An OAuth2 token endpoint error (RFC 6749 §5.2).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct OAuthError {
    #[schema(value_type = OAuthCode, example = "invalid_grant")]
    pub error: String,
    pub error_description: String,
}

/// The OAuth2 error codes (RFC 6749 §5.2) Portico answers.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // A schema: `Error::OAuth` carries the code as text.
enum OAuthCode {
    InvalidRequest,
    InvalidGrant,
    UnsupportedGrantType,
    InvalidClient,
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidCursor => {
                Error::bad_request(codes::INVALID_CURSOR, "the 'next' cursor is not valid for this listing")
            }
            StoreError::ConditionFailed { .. } => Error::Conflict("the record changed concurrently; retry".into()),
            StoreError::Unavailable(detail) => Error::Unavailable(detail),
            StoreError::Backend(detail) => Error::Internal(detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_map_to_retryable_or_opaque_errors() {
        // Unreachable, throttled, too slow, or an answer lost: retryable, and the detail stays
        // in the log.
        let down = Error::from(StoreError::Unavailable("DynamoDB GetItem: not reached: connection refused".into()));
        assert_eq!((down.status(), down.code()), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
        assert_eq!(
            serde_json::to_value(down.body()).unwrap(),
            serde_json::json!({"code": "unavailable", "message": "service temporarily unavailable"})
        );
        let broken = Error::from(StoreError::Backend("attribute doc has an unexpected type".into()));
        assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            serde_json::to_value(broken.body()).unwrap(),
            serde_json::json!({"code": "internal", "message": "internal error"})
        );
        let cursor = Error::from(StoreError::InvalidCursor);
        assert_eq!((cursor.status(), cursor.code()), (StatusCode::BAD_REQUEST, codes::INVALID_CURSOR));
    }
}
