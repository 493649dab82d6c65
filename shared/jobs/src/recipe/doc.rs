//! `meta.yml` as written, and its checks into [`Meta`].
//!
//! Kinds are flat structs with a `type` field, not serde's internally tagged enums: those
//! buffer their content, losing the field path and the line of an error inside.

use serde::Deserialize;

use super::{
    DEFAULT_SH_FILE, InputParam, MAX_INPUTS, MAX_NAME_CHARS, MAX_TEXT_CHARS, MAX_URL_CHARS, Meta, Output, Parallel,
    RecipeError, Workflow,
};

// The messages below state these limits in words.
const _: () = assert!(MAX_INPUTS == 100 && MAX_NAME_CHARS == 100 && MAX_TEXT_CHARS == 512 && MAX_URL_CHARS == 2048);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MetaDoc {
    name: String,
    workflow: WorkflowDoc,
    input: InputDoc,
    output: Option<OutputDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkflowDoc {
    #[serde(rename = "type")]
    kind: WorkflowKind,
    sh_file: Option<String>,
    parallel: Option<ParallelDoc>,
    config_file: Option<String>,
    batch_size: Option<u32>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum WorkflowKind {
    Shell,
    Visualization,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParallelDoc {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    #[allow(dead_code)] // one value, `files`: parsed to be checked
    partition_strategy: Option<PartitionStrategy>,
    partition_size: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum PartitionStrategy {
    Files,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputDoc {
    params: Vec<ParamDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamDoc {
    #[serde(rename = "type")]
    kind: ParamKind,
    value: Option<String>,
    dataset_identifier: Option<String>,
    filename: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ParamKind {
    Url,
    Dataone,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputDoc {
    #[serde(rename = "type")]
    kind: OutputKind,
    /// OGDC's placeholder for a DataONE output (`dataone` only).
    dataone_id: Option<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum OutputKind {
    Pvc,
    Temporary,
    Dataone,
}

fn field(field: impl Into<String>, expected: &'static str) -> RecipeError {
    RecipeError::Field { field: field.into(), expected }
}

impl MetaDoc {
    pub(super) fn check(self) -> Result<Meta, RecipeError> {
        check_name(&self.name)?;
        let workflow = self.workflow.check()?;
        if self.input.params.is_empty() {
            return Err(field("input.params", "must list at least one input"));
        }
        if self.input.params.len() > MAX_INPUTS {
            return Err(field("input.params", "lists too many inputs (at most 100)"));
        }
        let inputs =
            self.input.params.into_iter().enumerate().map(|(i, p)| p.check(i)).collect::<Result<Vec<_>, _>>()?;
        let output = match self.output {
            None => Output::Pvc,
            Some(OutputDoc { kind, dataone_id }) => {
                if dataone_id.is_some() && kind != OutputKind::Dataone {
                    return Err(field("output.dataone_id", "is only for a dataone output"));
                }
                match kind {
                    OutputKind::Pvc => Output::Pvc,
                    OutputKind::Temporary => Output::Temporary,
                    OutputKind::Dataone => Output::Dataone,
                }
            }
        };
        Ok(Meta { name: self.name, workflow, inputs, output })
    }
}

impl WorkflowDoc {
    fn check(self) -> Result<Workflow, RecipeError> {
        let parallel = match self.parallel {
            None => Parallel { enabled: false, partition_size: 1 },
            Some(p) => match p.partition_size {
                Some(0) => return Err(field("workflow.parallel.partition_size", "must be at least 1")),
                size => Parallel { enabled: p.enabled, partition_size: size.unwrap_or(1) },
            },
        };
        match self.kind {
            WorkflowKind::Shell => {
                if self.config_file.is_some() {
                    return Err(field("workflow.config_file", "is only for a visualization workflow"));
                }
                if self.batch_size.is_some() {
                    return Err(field("workflow.batch_size", "is only for a visualization workflow"));
                }
                let sh_file = self.sh_file.unwrap_or_else(|| DEFAULT_SH_FILE.into());
                check_relative_path("workflow.sh_file", &sh_file)?;
                Ok(Workflow::Shell { sh_file, parallel })
            }
            WorkflowKind::Visualization => {
                if self.sh_file.is_some() {
                    return Err(field("workflow.sh_file", "is only for a shell workflow"));
                }
                if let Some(config_file) = &self.config_file {
                    check_relative_path("workflow.config_file", config_file)?;
                }
                let batch_size = self.batch_size.unwrap_or(250);
                if batch_size == 0 {
                    return Err(field("workflow.batch_size", "must be at least 1"));
                }
                Ok(Workflow::Visualization { config_file: self.config_file, batch_size, parallel })
            }
        }
    }
}

impl ParamDoc {
    fn check(self, index: usize) -> Result<InputParam, RecipeError> {
        let at = |name: &str| format!("input.params[{index}].{name}");
        match self.kind {
            ParamKind::Url => {
                if self.dataset_identifier.is_some() {
                    return Err(field(at("dataset_identifier"), "is only for a dataone input"));
                }
                if self.filename.is_some() {
                    return Err(field(at("filename"), "is only for a dataone input"));
                }
                let value = self.value.ok_or_else(|| field(at("value"), "is required for a url input"))?;
                if !is_http_url(&value) {
                    return Err(field(at("value"), "must be an http(s) URL with a host, at most 2048 characters"));
                }
                Ok(InputParam::Url { value })
            }
            ParamKind::Dataone => {
                if self.value.is_some() {
                    return Err(field(at("value"), "is only for a url input"));
                }
                let dataset_identifier = self
                    .dataset_identifier
                    .ok_or_else(|| field(at("dataset_identifier"), "is required for a dataone input"))?;
                check_text(at("dataset_identifier"), &dataset_identifier)?;
                if let Some(filename) = &self.filename {
                    check_text(at("filename"), filename)?;
                }
                Ok(InputParam::Dataone { dataset_identifier, filename: self.filename })
            }
        }
    }
}

/// OGDC's pattern, `^[a-zA-Z0-9 .-]+$`, by hand; and a letter or digit first, so that the id
/// is never `.` or `..` (it names a directory) nor starts like an option.
fn check_name(name: &str) -> Result<(), RecipeError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '-');
    let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !name.chars().all(allowed) || name.len() > MAX_NAME_CHARS {
        return Err(field(
            "name",
            "must match ^[a-zA-Z0-9 .-]+$, start with a letter or digit, and be at most 100 characters",
        ));
    }
    Ok(())
}

/// A file inside the recipe directory: `/`-separated segments of `[A-Za-z0-9._-]`, none
/// starting with `.` (so no `..`, no hidden files), not absolute.
fn check_relative_path(name: &'static str, path: &str) -> Result<(), RecipeError> {
    let segment_ok = |s: &str| {
        s.bytes().next().is_some_and(|b| b != b'.')
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if path.len() > MAX_TEXT_CHARS || !path.split('/').all(segment_ok) {
        return Err(field(
            name,
            "must be a file in the recipe directory: a relative path of [A-Za-z0-9._-] segments, none starting with '.'",
        ));
    }
    Ok(())
}

/// Free text passed on to the workflow: bounded, one line.
fn check_text(name: String, text: &str) -> Result<(), RecipeError> {
    if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS || text.chars().any(char::is_control) {
        return Err(field(name, "must be 1 to 512 characters, without control characters"));
    }
    Ok(())
}

/// `http://` or `https://` (any case), a host, no whitespace or control characters.
fn is_http_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    url.len() <= MAX_URL_CHARS
        && !host.is_empty()
        && !host.starts_with(':')
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}
