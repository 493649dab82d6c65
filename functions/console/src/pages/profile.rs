//! Placeholder: filled in by the profile page.

use portico_core::web::ApiResponse;

use crate::Ctx;
use crate::backend::ApiError;

pub async fn show(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let _ = ctx;
    Err(super::not_found())
}
