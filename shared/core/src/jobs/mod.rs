//! Jobs (architecture §7): OGDC recipes, to be translated into Argo Workflows.
//!
//! - [`recipe`]: an OGDC shell recipe (`meta.yml` and its step file), parsed strictly;
//! - [`workflow`]: a recipe as the Argo Workflow that runs it.

pub mod engine;
pub mod output;
pub mod recipe;
pub mod service;
pub mod source;
pub mod templates;
pub mod workflow;
mod yaml;

pub use yaml::YamlError;
