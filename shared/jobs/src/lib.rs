//! Jobs: OGDC recipes and registered templates, run as Argo Workflows.
//!
//! - [`recipe`]: an OGDC shell recipe (`meta.yml` and its step file), parsed strictly;
//! - [`source`]: recipes read from an allow-listed `github://` source;
//! - [`workflow`]: a recipe as the Argo Workflow that runs it;
//! - [`templates`]: administrator-registered WorkflowTemplates and their checked parameters;
//! - [`engine`]: the workflow engine (Argo Server's REST API) behind a trait;
//! - [`service`]: jobs themselves: submit, read, cancel, logs, output, the reconciler's sweep;
//! - [`output`]: download links for `temporary` outputs;
//! - `yaml`: the strict YAML reading `recipe` uses;
//! - [`JobClients`]: the engine and the output links, built by the functions that use them.

mod clients;
pub mod engine;
pub mod output;
pub mod recipe;
pub mod service;
pub mod source;
pub mod templates;
pub mod workflow;
mod yaml;

pub use clients::JobClients;
pub use yaml::YamlError;

/// The jobs domain's named schemas in the OpenAPI document (the bodies' own are collected from
/// the handlers' declarations).
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(service::Phase, templates::TemplateParameter, templates::RegisteredTemplate)))]
pub struct Components;
