//! Parameters several routes share, declared once for their handlers' `params(...)`: paging,
//! the app slug, and the conditional-write headers, each with what the server checks of it.

#![allow(dead_code)] // Fields are read by the derive only: the handlers read the request.

use utoipa::IntoParams;
use utoipa::openapi::Required;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};

use crate::names::{self, NameRule};

/// The paging parameters of every listing: `limit` and `next`.
pub struct Paging;

impl IntoParams for Paging {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let query = |name: &str, about: &str, schema: ObjectBuilder| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .description(Some(about))
                .required(Required::False)
                .schema(Some(schema))
                .build()
        };
        // Any positive integer, however large (clamped): no `format`, which would bound it.
        let limit = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1));
        // What `Cursor::position` can decode: URL-safe base64 without padding, 2048 at most.
        // Only the server's own cursors are valid: any other is 400 `invalid_cursor`.
        let next = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(2048))
            .pattern(Some("^[A-Za-z0-9_-]+$"));
        vec![
            query("limit", "Page size (default `page_size_default`, clamped to `page_size_max`).", limit),
            query("next", "The previous page's opaque cursor.", next),
        ]
    }
}

/// A path parameter that follows a name rule.
fn name_in_path(name: &str, rule: &NameRule) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(rule.schema()))
        .build()
}

/// An app's slug in the path (`{slug}`).
pub struct SlugPath;

impl IntoParams for SlugPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![name_in_path("slug", &names::SLUG)]
    }
}

/// A username in the path (`{user}`).
pub struct UserPath;

impl IntoParams for UserPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![name_in_path("user", &names::USERNAME)]
    }
}

/// A role's name in the path (`{role}`).
pub struct RolePath;

impl IntoParams for RolePath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![name_in_path("role", &names::ROLE)]
    }
}

/// A desktop environment's name in the path (`{name}`).
pub struct EnvironmentPath;

impl IntoParams for EnvironmentPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![name_in_path("name", &names::ENVIRONMENT)]
    }
}

/// `If-Match` as `web::precondition` reads it: `*`, or a list of quoted entity tags (strong
/// or `W/` weak; empty list elements skipped), in visible ASCII.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfMatch {
    /// The `ETag` read before: the write happens only if the app is unchanged (else 412).
    #[param(
        rename = "If-Match",
        nullable = false,
        pattern = "^(\\*|[ \t,]*(W/)?\"[ !#-~\t]*\"[ \t]*(,[ \t,]*((W/)?\"[ !#-~\t]*\"[ \t]*)?)*)$"
    )]
    if_match: Option<String>,
}

/// `If-None-Match` on writes: only `*` (create only).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfNoneMatch {
    /// `*`: create only.
    #[param(rename = "If-None-Match", nullable = false, inline)]
    if_none_match: Option<AnyTag>,
}

#[derive(utoipa::ToSchema)]
#[allow(missing_docs)] // Its description is the parameter's.
enum AnyTag {
    #[schema(rename = "*")]
    Any,
}
