//! OGDC shell recipes: `meta.yml` and the step file, in the format of `ogdc-runner` 0.3.0 (see
//! the contracts README), refused as strictly as OGDC refuses them (unknown keys at every
//! level, the name pattern, at least one input) and a little more where Portico's own safety
//! needs it (file names without `..`, http(s) inputs only, size limits).
//!
//! Parsing is two steps: [`Meta::parse`] refuses what is malformed; [`Meta::validate`] refuses
//! what is well formed but not supported (visualization workflows, DataONE outputs). Messages
//! name the field or line and what was expected, never the submitted text: a recipe may hold
//! secrets, and messages reach logs.

use super::yaml::{self, YamlError};

/// Largest `meta.yml` accepted, in bytes.
pub const MAX_META_BYTES: usize = 64 * 1024;
/// Largest step file accepted, in bytes.
pub const MAX_STEPS_BYTES: usize = 64 * 1024;
/// Most steps (non-blank, non-comment lines) in one recipe.
pub const MAX_STEPS: usize = 100;
/// Most input parameters in one recipe.
pub const MAX_INPUTS: usize = 100;
/// Longest recipe name, in characters (the id becomes part of Kubernetes names and paths).
pub const MAX_NAME_CHARS: usize = 100;
/// Longest input URL.
pub const MAX_URL_CHARS: usize = 2048;
/// Longest other text field (DataONE identifier and file name, file paths).
pub const MAX_TEXT_CHARS: usize = 512;
/// The step file's name when `workflow.sh_file` is absent.
pub const DEFAULT_SH_FILE: &str = "recipe.sh";

/// Why a recipe was refused; the message is safe to return and to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipeError {
    #[error("meta.yml is larger than {limit} bytes")]
    MetaTooLarge { limit: usize },
    #[error("meta.yml is not UTF-8 text")]
    MetaNotUtf8,
    /// Not YAML, or YAML of the wrong shape (unknown key, wrong type, missing field).
    #[error("meta.yml: {0}")]
    Yaml(YamlError),
    /// A field of the right type whose value is not acceptable.
    #[error("meta.yml: field '{field}' {expected}")]
    Field { field: String, expected: &'static str },
    #[error(
        "meta.yml: field 'workflow.type': visualization recipes are not supported by Portico; write a shell recipe"
    )]
    VisualizationUnsupported,
    #[error(
        "meta.yml: field 'output.type': dataone outputs are not implemented (nor are they in OGDC); use pvc or temporary"
    )]
    DataoneOutputUnsupported,
    #[error("the step file is larger than {limit} bytes")]
    StepsTooLarge { limit: usize },
    #[error("the step file is not UTF-8 text")]
    StepsNotUtf8,
    #[error("the step file has no steps: every line is blank or a # comment")]
    NoSteps,
    #[error("the step file has more than {limit} steps")]
    TooManySteps { limit: usize },
    #[error("the step file, line {line}: {expected}")]
    StepLine { line: usize, expected: &'static str },
}

/// A recipe's `meta.yml`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Matches `^[a-zA-Z0-9 .-]+$`, starts with a letter or digit.
    pub name: String,
    pub workflow: Workflow,
    /// At least one.
    pub inputs: Vec<InputParam>,
    pub output: Output,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workflow {
    /// One workflow step per line of `sh_file`.
    Shell { sh_file: String, parallel: Parallel },
    /// Parsed so that a recipe OGDC accepts gets a clear refusal from [`Meta::validate`].
    Visualization { config_file: Option<String>, batch_size: u32, parallel: Parallel },
}

/// Fan-out by files (OGDC's only strategy): `partition_size` input files per task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parallel {
    pub enabled: bool,
    pub partition_size: u32,
}

/// Where an input comes from. Fetched inside the workflow, never by the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputParam {
    /// An http(s) URL.
    Url { value: String },
    /// A DataONE dataset package; `filename` (a glob) picks its files.
    Dataone { dataset_identifier: String, filename: Option<String> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    /// A per-recipe sub-path of the configured volume (OGDC's default).
    Pvc,
    /// A zip artifact, downloadable for a while.
    Temporary,
    /// Publication to DataONE: parsed, refused by [`Meta::validate`].
    Dataone,
}

/// A recipe: its checked `meta.yml` and its steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub meta: Meta,
    /// Each a `sh -c` command, in order; step N's `/output_dir` is step N+1's `/input_dir`.
    pub steps: Vec<String>,
}

impl Recipe {
    /// A recipe from the two files' bytes: parsed, checked and supported.
    pub fn parse(meta_yml: &[u8], step_file: &[u8]) -> Result<Recipe, RecipeError> {
        Recipe::from_parts(Meta::parse(meta_yml)?, step_file)
    }

    /// A recipe from a `meta.yml` already parsed (to learn its [`Meta::sh_file`]) and the step
    /// file's bytes: `meta` is [`validate`](Meta::validate)d, the steps parsed.
    pub fn from_parts(meta: Meta, step_file: &[u8]) -> Result<Recipe, RecipeError> {
        meta.validate()?;
        let steps = parse_steps(step_file)?;
        Ok(Recipe { meta, steps })
    }
}

impl Meta {
    /// `meta.yml`'s bytes, parsed and checked; not yet [`validate`](Self::validate)d.
    pub fn parse(bytes: &[u8]) -> Result<Meta, RecipeError> {
        if bytes.len() > MAX_META_BYTES {
            return Err(RecipeError::MetaTooLarge { limit: MAX_META_BYTES });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| RecipeError::MetaNotUtf8)?;
        let doc: doc::MetaDoc = yaml::from_str(text).map_err(RecipeError::Yaml)?;
        doc.check()
    }

    /// Refuses what Portico does not run: visualization workflows and DataONE outputs.
    pub fn validate(&self) -> Result<(), RecipeError> {
        if let Workflow::Visualization { .. } = self.workflow {
            return Err(RecipeError::VisualizationUnsupported);
        }
        if self.output == Output::Dataone {
            return Err(RecipeError::DataoneOutputUnsupported);
        }
        Ok(())
    }

    /// The step file's name (relative to `meta.yml`); `None` for a visualization workflow,
    /// which has none.
    pub fn sh_file(&self) -> Option<&str> {
        match &self.workflow {
            Workflow::Shell { sh_file, .. } => Some(sh_file),
            Workflow::Visualization { .. } => None,
        }
    }

    /// The recipe id, as OGDC derives it ([`recipe_id`]).
    pub fn id(&self) -> String {
        recipe_id(&self.name)
    }
}

impl RecipeError {
    /// Whether the refusal concerns the step file (else `meta.yml`).
    pub fn is_about_steps(&self) -> bool {
        matches!(
            self,
            RecipeError::StepsTooLarge { .. }
                | RecipeError::StepsNotUtf8
                | RecipeError::NoSteps
                | RecipeError::TooManySteps { .. }
                | RecipeError::StepLine { .. }
        )
    }
}

/// OGDC's recipe id: the name lowercased, spaces to `-`.
pub fn recipe_id(name: &str) -> String {
    name.to_lowercase().replace(' ', "-")
}

/// The step file's bytes as steps: each line that is neither blank nor a `#` comment (after
/// leading whitespace) is one, kept as written. OGDC would also run whitespace-only and
/// indented `#` lines, as steps that do nothing; Portico drops them.
pub fn parse_steps(bytes: &[u8]) -> Result<Vec<String>, RecipeError> {
    if bytes.len() > MAX_STEPS_BYTES {
        return Err(RecipeError::StepsTooLarge { limit: MAX_STEPS_BYTES });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| RecipeError::StepsNotUtf8)?;
    let mut steps = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            let expected = "must not contain control characters";
            return Err(RecipeError::StepLine { line: index + 1, expected });
        }
        if steps.len() == MAX_STEPS {
            return Err(RecipeError::TooManySteps { limit: MAX_STEPS });
        }
        steps.push(line.to_owned());
    }
    if steps.is_empty() {
        return Err(RecipeError::NoSteps);
    }
    Ok(steps)
}

mod doc;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

/// A recipe's messages never quote its text, so they go to the client as they are.
impl From<RecipeError> for portico_core::Error {
    fn from(e: RecipeError) -> Self {
        portico_core::Error::bad_request(portico_core::codes::INVALID_RECIPE, e.to_string())
    }
}
