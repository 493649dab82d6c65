//! Placeholder: filled in by the sessions pages.

use http::Method;
use portico_core::web::ApiResponse;

use crate::Ctx;
use crate::backend::ApiError;

pub async fn route(ctx: &Ctx<'_>, rest: &[&str]) -> Result<ApiResponse, ApiError> {
    let _ = (ctx, rest, Method::GET);
    Err(super::not_found())
}
