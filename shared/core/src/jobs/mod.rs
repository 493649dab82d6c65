//! Jobs (architecture §7): OGDC recipes, to be translated into Argo Workflows.
//!
//! - [`recipe`]: an OGDC shell recipe (`meta.yml` and its step file), parsed strictly.

pub mod recipe;
mod yaml;

pub use yaml::YamlError;
