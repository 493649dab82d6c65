//! The document's shared components: the core types every group's bodies refer to (each
//! derives `ToSchema` where it lives), the error code list, and the seed's app as the
//! examples' data. Bodies are the handlers' own types, declared beside them.

use serde_json::json;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use crate::apps::{App, AppInput};
use crate::auth::TokenSource;
use crate::authz::{Action, Permission};
use crate::quotas::Resources;

/// The core's named schemas (nested ones are collected by the derive); the domain crates
/// add theirs (`portico_jobs::Components`, `portico_streaming::Components`).
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(crate::error::PorticoError, App, AppInput, TokenSource, Action, Permission, Resources,)))]
pub struct Components;

/// The `ErrorCode` component: a string enum of `codes`.
pub fn error_codes(codes: &[&str]) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("Stable, machine-readable: see each status' response for the codes it carries."))
        .enum_values(Some(codes.to_vec()))
        .into()
}

/// The Omniverse portal sample's app, as `PUT /apps/{slug}` takes it.
pub fn usd_validate() -> serde_json::Value {
    json!({
        "slug": "usd-validate",
        "function_id": "20e5086a-832a-43a6-87c9-6784e2d1e4bd",
        "function_version_id": "ba4e628b-975b-4e28-9e06-492016a94ec7",
        "title": "USD Validate",
        "description": "USD Validate 2024.1.0 aims to apply laser focus by primarily targeting developers at ISVs who want to build and deploy configurations.",
        "version": "2024.1.0",
        "image": "https://launcher-prod.s3.us-east-2.amazonaws.com/create/2023.2.5/image.png",
        "icon": "https://launcher-prod.s3.us-east-2.amazonaws.com/create/2023.2.5/icon.png",
        "category": "Template Applications",
        "product_area": "Omniverse"
    })
}

/// The seed's app as answered: the server's fields and its platform status added.
pub fn usd_validate_view() -> serde_json::Value {
    let mut app = usd_validate();
    app["group"] = json!("");
    app["published_at"] = json!("2026-11-24T12:00:00Z");
    app["updated_at"] = json!("2026-11-24T12:00:00Z");
    app["status"] = json!("ACTIVE");
    app
}
