//! Schemas of the bodies the function crates build in place (`json!` answers, private request
//! types). Each mirrors the code that makes it, named in its doc comment; the core types the
//! handlers use directly derive `ToSchema` where they live.

#![allow(dead_code)] // Fields are read by the schema derive only.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use crate::apps::{App, AppInput};
use crate::auth::TokenSource;
use crate::authz::{Action, Permission};
use crate::jobs::service::Phase;
use crate::jobs::templates::{RegisteredTemplate, TemplateParameter};
use crate::quotas::Resources;
use crate::relay::SessionState;
use crate::relay::functions::AppStatus;

/// Every named schema of the document (nested ones are collected by the derive).
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    crate::error::PorticoError,
    App,
    AppInput,
    AppStatus,
    TokenSource,
    Action,
    Permission,
    Resources,
    StartSession,
    SessionTicket,
    SessionView,
    SessionState,
    SessionPage,
    SubmitJob,
    UploadedRecipe,
    Requested,
    JobView,
    JobPage,
    Phase,
    JobOutput,
    TemplateBody,
    TemplateParameter,
    RegisteredTemplate,
    TemplatePage,
    OgdcError,
    OgdcToken,
    OgdcSubmit,
    OgdcSubmitted,
    OgdcStatus,
    OgdcMessage,
    OgdcOutput,
    OgdcUser,
    OgdcVersion,
    RpcServices,
    RpcService,
    RpcMethod,
    OgdcLogin,
    OgdcNewUser
)))]
pub struct Components;

/// The `ErrorCode` component: a string enum of `codes`.
pub fn error_codes(codes: &[&str]) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("Stable, machine-readable: see each status' response for the codes it carries."))
        .enum_values(Some(codes.to_vec()))
        .into()
}

/// The seed's app (seed 000, the Omniverse Cloud Portal sample), as `PUT /apps/{slug}` takes it.
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

/// `POST /sessions` (`functions/sessions` `StartBody`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartSession {
    /// The app's slug.
    #[schema(example = "usd-validate", pattern = "^[a-z0-9][a-z0-9-]{0,62}$")]
    app: String,
}

/// A client ticket: open `ws_url` (it carries the ticket) within `expires_in` seconds.
#[derive(Serialize, ToSchema)]
pub struct SessionTicket {
    session_id: String,
    ws_url: String,
    ticket: String,
    expires_in: u64,
}

/// A session as answered (`Session::view`; connection ids stay inside).
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    id: String,
    owner: String,
    app: String,
    state: SessionState,
    created_at: String,
    ends_at: String,
    client_connected: bool,
    host_connected: bool,
    ended_reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionPage {
    items: Vec<SessionView>,
    next: Option<String>,
}

/// `POST /jobs` (`functions/jobs` `SubmitBody`): exactly one of `recipe`, `source`, `template`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    #[schema(nullable = false)]
    recipe: Option<UploadedRecipe>,
    /// `github://org:repo@ref/path`, for a repository in `recipe_github_allow`.
    source: Option<String>,
    /// A registered template's name.
    template: Option<String>,
    /// The template's parameters (templates only).
    #[serde(default)]
    parameters: std::collections::BTreeMap<String, String>,
    /// A `pvc` output replaces an earlier publication.
    #[serde(default)]
    overwrite: bool,
    /// Default `job_default_group`; a template's group is its own.
    group: Option<String>,
    #[serde(default)]
    resources: Requested,
}

/// An OGDC recipe directory: `meta.yml` and its step file, as text.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadedRecipe {
    meta_yml: String,
    steps: String,
}

/// Resources a job asks for, held against the owner's quota while it runs.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Requested {
    /// Millicores.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_099_511_627_776_f64)]
    cpu: i64,
    /// MiB.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_099_511_627_776_f64)]
    memory: i64,
    /// GiB.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_099_511_627_776_f64)]
    storage: i64,
}

/// A job as answered (`Job::view`).
#[derive(Serialize, ToSchema)]
pub struct JobView {
    id: String,
    owner: String,
    group: String,
    recipe: String,
    #[schema(example = "recipe")]
    kind: String,
    workflow: String,
    phase: Phase,
    message: String,
    progress: String,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    /// `{"type": "pvc", "volume", "path"}`, `{"type": "temporary"}` or `{"type": "template", "note"}`.
    output: serde_json::Value,
    resources: Resources,
}

#[derive(Serialize, ToSchema)]
pub struct JobPage {
    items: Vec<JobView>,
    next: Option<String>,
}

/// `GET /jobs/{id}/output`: where a `pvc` output is, or a presigned download of a `temporary` one.
#[derive(Serialize, ToSchema)]
pub struct JobOutput {
    #[serde(rename = "type")]
    #[schema(example = "temporary")]
    kind: String,
    volume: Option<String>,
    path: Option<String>,
    url: Option<String>,
    expires_in: Option<u64>,
}

/// `PUT /recipes/{name}` (`functions/jobs` `TemplateBody`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    /// The WorkflowTemplate's name in Argo's namespace.
    #[schema(pattern = "^[a-z][a-z0-9-]{0,62}$")]
    workflow_template: String,
    #[serde(default)]
    description: String,
    /// Default `job_default_group`.
    #[schema(min_length = 1, max_length = 64)]
    group: Option<String>,
    #[serde(default)]
    #[schema(max_items = 50)]
    parameters: Vec<TemplateParameter>,
}

#[derive(Serialize, ToSchema)]
pub struct TemplatePage {
    items: Vec<RegisteredTemplate>,
    next: Option<String>,
}

/// OGDC's (FastAPI's) error body.
#[derive(Serialize, ToSchema)]
pub struct OgdcError {
    detail: String,
}

/// `POST /ogdc/token`.
#[derive(Serialize, ToSchema)]
pub struct OgdcToken {
    access_token: String,
    #[schema(example = "Bearer")]
    token_type: String,
    utc_expiration: String,
}

/// `POST /ogdc/submit` (`functions/jobs/src/ogdc.rs` `SubmitBody`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OgdcSubmit {
    /// `github://org:repo@ref/path`.
    recipe_path: String,
    #[serde(default)]
    overwrite: bool,
}

#[derive(Serialize, ToSchema)]
pub struct OgdcSubmitted {
    message: String,
    recipe_workflow_name: String,
}

#[derive(Serialize, ToSchema)]
pub struct OgdcStatus {
    status: String,
    recipe_workflow_name: String,
    timestamp: String,
}

#[derive(Serialize, ToSchema)]
pub struct OgdcMessage {
    message: String,
}

#[derive(Serialize, ToSchema)]
pub struct OgdcOutput {
    data_url: String,
}

#[derive(Serialize, ToSchema)]
pub struct OgdcUser {
    current_user: String,
}

#[derive(Serialize, ToSchema)]
pub struct OgdcVersion {
    #[schema(example = "0.3.0")]
    ogdc_runner_version: String,
}

/// `GET /rpc/services` (`Gateway::listing`).
#[derive(Serialize, ToSchema)]
pub struct RpcServices {
    services: Vec<RpcService>,
}

#[derive(Serialize, ToSchema)]
pub struct RpcService {
    #[schema(example = "show.ShowInterface")]
    name: String,
    /// The upstream's authorization group.
    group: Option<String>,
    methods: Vec<RpcMethod>,
}

#[derive(Serialize, ToSchema)]
pub struct RpcMethod {
    name: String,
    path: String,
    request: String,
    response: String,
}

/// The form of `POST /ogdc/token`: a user's `username` and `password` (other fields ignored).
#[derive(Serialize, ToSchema)]
pub struct OgdcLogin {
    username: String,
    password: String,
}

/// The form of `POST /ogdc/create_user` (other fields ignored).
#[derive(Serialize, ToSchema)]
pub struct OgdcNewUser {
    #[schema(pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    username: String,
    /// 8 to 256 characters.
    #[schema(min_length = 8, max_length = 256)]
    password: String,
}
