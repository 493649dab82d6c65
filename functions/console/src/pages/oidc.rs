//! Placeholder: the OIDC sign-in.

use portico_core::web::{ApiRequest, ApiResponse};

use crate::Console;
use crate::backend::ApiError;

pub async fn route(console: &Console, req: &ApiRequest, step: &str) -> Result<ApiResponse, ApiError> {
    let _ = (console, req, step);
    Err(super::not_found())
}
