//! gRPC status to HTTP, as grpc-gateway maps it, and its error body
//! `{"code": <gRPC code number>, "message", "details": [...]}`.

use http::StatusCode;
use serde_json::{Value, json};
pub use tonic::Code;

/// grpc-gateway's `HTTPStatusFromCode`.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a status"),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// An error of the gateway's routes, in grpc-gateway's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcError {
    pub http: StatusCode,
    pub code: Code,
    pub message: String,
    /// `google.protobuf.Any` details as JSON (`{"@type", ...}`).
    pub details: Vec<Value>,
}

impl RpcError {
    /// An error the gateway itself raises (`http` chosen by the gateway, not the table).
    pub fn new(http: StatusCode, code: Code, message: impl Into<String>) -> Self {
        RpcError { http, code, message: message.into(), details: vec![] }
    }

    /// An upstream's status, mapped by the table.
    pub fn from_status(status: &tonic::Status, details: Vec<Value>) -> Self {
        RpcError {
            http: http_status(status.code()),
            code: status.code(),
            message: status.message().to_owned(),
            details,
        }
    }

    pub fn body(&self) -> Value {
        json!({"code": self.code as i32, "message": self.message, "details": self.details})
    }
}

impl From<portico_core::Error> for RpcError {
    /// Portico's own refusals (authentication, authorization, store faults) in the same shape.
    fn from(e: portico_core::Error) -> Self {
        use portico_core::Error as E;
        let code = match &e {
            E::Unauthorized(_) => Code::Unauthenticated,
            E::Forbidden(_) => Code::PermissionDenied,
            E::NotFound(_) => Code::NotFound,
            E::BadRequest { .. } | E::PayloadTooLarge { .. } | E::UnsupportedMediaType(_) => Code::InvalidArgument,
            E::Unavailable(_) => Code::Unavailable,
            E::MethodNotAllowed { .. } => Code::Unimplemented,
            _ => Code::Internal,
        };
        // As every other route logs them: the detail stays server-side, never in the body.
        portico_core::web::log_server_side(&e);
        RpcError { http: e.status(), code, message: e.to_string(), details: vec![] }
    }
}
