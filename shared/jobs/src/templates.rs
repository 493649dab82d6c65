//! Registered templates: an administrator names an Argo WorkflowTemplate and declares its
//! parameters (pattern, longest value, required, default); users submit it with values, which
//! are checked against the declaration before Argo sees them. Nothing else of the template is
//! the user's to choose.
//!
//! Storage: `pk = "TEMPLATES"`, `sk = <name>` (one partition, listed in name order).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use portico_core::store::{Condition, Cursor, Item, Key, Query, Table};
use portico_core::{Error, codes};

/// Longest parameter value accepted when a declaration says nothing.
pub const DEFAULT_MAX_LENGTH: usize = 256;
/// Most parameters one template declares.
pub const MAX_PARAMETERS: usize = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateParameter {
    /// Unique among the template's parameters.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub name: String,
    /// A regular expression the whole value must match.
    #[serde(default)]
    #[schema(max_length = 512)]
    pub pattern: Option<String>,
    #[serde(default = "default_max_length")]
    #[schema(minimum = 1, maximum = 4096)]
    pub max_length: usize,
    #[serde(default)]
    pub required: bool,
    /// Used when the parameter is not given (must itself be valid).
    #[serde(default)]
    pub default: Option<String>,
}

fn default_max_length() -> usize {
    DEFAULT_MAX_LENGTH
}

/// A template users may submit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegisteredTemplate {
    /// The registry's name (what users submit).
    pub name: String,
    /// The WorkflowTemplate's name in Argo's namespace.
    pub workflow_template: String,
    #[serde(default)]
    pub description: String,
    /// Authorization group of its jobs (`job.submit` is needed on it).
    pub group: String,
    #[serde(default)]
    pub parameters: Vec<TemplateParameter>,
}

fn invalid(field: &str, why: impl std::fmt::Display) -> Error {
    Error::invalid_field(field, why)
}

/// Kubernetes-style names: lowercase letters, digits and `-`, 1 to 63, starting with a letter.
fn is_k8s_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A parameter name as Argo takes it: letters, digits, `-`, `_`, `.`.
fn is_parameter_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn anchored(pattern: &str) -> Result<regex_lite::Regex, regex_lite::Error> {
    regex_lite::Regex::new(&format!("^(?:{pattern})$"))
}

/// A parameter's declared pattern, compiled: `Ok(None)` when none is declared.
type Pattern = Result<Option<regex_lite::Regex>, regex_lite::Error>;

impl TemplateParameter {
    /// The declared pattern, anchored and compiled; each caller compiles it once per call and
    /// checks every value against that.
    fn pattern(&self) -> Pattern {
        self.pattern.as_deref().map(anchored).transpose()
    }

    /// Whether `value` is acceptable, `pattern` being what `self.pattern()` gave (an unusable
    /// one matches nothing); the message names the parameter, never the value.
    fn check(&self, value: &str, pattern: &Pattern) -> Result<(), Error> {
        let field = format!("parameters.{}", self.name);
        // Argo substitutes `{{...}}` in templates; a value never carries an expression in.
        if value.contains("{{") || value.chars().any(|c| c.is_control()) {
            return Err(invalid(&field, "may not contain '{{' or control characters"));
        }
        if value.chars().count() > self.max_length {
            return Err(invalid(&field, format_args!("is longer than {} characters", self.max_length)));
        }
        let matches = match pattern {
            Ok(None) => true,
            Ok(Some(r)) => r.is_match(value),
            Err(_) => false,
        };
        if !matches {
            return Err(invalid(&field, "does not match the template's pattern for it"));
        }
        Ok(())
    }
}

impl RegisteredTemplate {
    /// Refuses a declaration that could not be used.
    pub fn validate(&self) -> Result<(), Error> {
        if !is_k8s_name(&self.name) {
            return Err(invalid("name", "must be 1 to 63 lowercase letters, digits or '-', starting with a letter"));
        }
        if !is_k8s_name(&self.workflow_template) {
            return Err(invalid(
                "workflow_template",
                "must be a WorkflowTemplate name (lowercase letters, digits, '-')",
            ));
        }
        if self.group.is_empty() || self.group.chars().count() > 64 {
            return Err(invalid("group", "must be 1 to 64 characters"));
        }
        if self.parameters.len() > MAX_PARAMETERS {
            return Err(invalid("parameters", format_args!("may declare at most {MAX_PARAMETERS}")));
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &self.parameters {
            if !is_parameter_name(&p.name) || !seen.insert(p.name.as_str()) {
                return Err(invalid("parameters", "names must be unique letters, digits, '-', '_' or '.'"));
            }
            if p.max_length == 0 || p.max_length > 4096 {
                return Err(invalid(&format!("parameters.{}.max_length", p.name), "must be between 1 and 4096"));
            }
            let unusable = || invalid(&format!("parameters.{}.pattern", p.name), "is not a usable regular expression");
            // Length first: a huge pattern is refused before it is compiled.
            if p.pattern.as_ref().is_some_and(|pattern| pattern.len() > 512) {
                return Err(unusable());
            }
            let pattern = p.pattern();
            if pattern.is_err() {
                return Err(unusable());
            }
            if let Some(default) = &p.default {
                p.check(default, &pattern)?;
            }
        }
        Ok(())
    }

    /// The values to submit: each given one checked, defaults filled in, required ones
    /// present, nothing undeclared.
    pub fn values(&self, given: &BTreeMap<String, String>) -> Result<Vec<(String, String)>, Error> {
        if let Some(unknown) = given.keys().find(|k| !self.parameters.iter().any(|p| &p.name == *k)) {
            let shown = if is_parameter_name(unknown) { unknown.as_str() } else { "?" };
            return Err(Error::bad_field(
                codes::INVALID_FIELD,
                "parameters",
                format!("template '{}' declares no parameter '{shown}'", self.name),
            ));
        }
        let mut values = Vec::new();
        for p in &self.parameters {
            match given.get(&p.name).or(p.default.as_ref()) {
                Some(v) => {
                    p.check(v, &p.pattern())?;
                    values.push((p.name.clone(), v.clone()));
                }
                None if p.required => return Err(invalid(&format!("parameters.{}", p.name), "is required")),
                None => {}
            }
        }
        Ok(values)
    }
}

fn key(name: &str) -> Key {
    Key::new("TEMPLATES", name)
}

/// The registry. One storage call each.
pub struct Templates<'a> {
    pub table: &'a dyn Table,
}

impl Templates<'_> {
    pub async fn get(&self, name: &str) -> Result<RegisteredTemplate, Error> {
        let not_found = || Error::NotFound(format!("no template '{name}' is registered"));
        if !is_k8s_name(name) {
            return Err(not_found());
        }
        let item = self.table.get(&key(name)).await?.ok_or_else(not_found)?;
        from_item(&item)
    }

    /// Registers or replaces `template` (validated first).
    pub async fn put(&self, template: &RegisteredTemplate) -> Result<(), Error> {
        template.validate()?;
        self.table.put(Item::new(key(&template.name)).with_doc(template), Condition::Always).await?;
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        match self.table.delete(&key(name), Condition::Exists).await {
            Ok(_) => Ok(()),
            Err(portico_core::store::StoreError::ConditionFailed { .. }) => {
                Err(Error::NotFound(format!("no template '{name}' is registered")))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list(
        &self,
        limit: u32,
        after: Option<Cursor>,
    ) -> Result<(Vec<RegisteredTemplate>, Option<Cursor>), Error> {
        let mut q = Query::table("TEMPLATES", limit);
        q.after = after;
        let page = self.table.query(&q).await?;
        Ok((page.items.iter().map(from_item).collect::<Result<_, _>>()?, page.next))
    }
}

fn from_item(item: &Item) -> Result<RegisteredTemplate, Error> {
    item.doc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> RegisteredTemplate {
        RegisteredTemplate {
            name: "reproject".into(),
            workflow_template: "gdal-reproject".into(),
            description: String::new(),
            group: "jobs".into(),
            parameters: vec![
                TemplateParameter {
                    name: "epsg".into(),
                    pattern: Some("[0-9]{4,5}".into()),
                    max_length: 5,
                    required: true,
                    default: None,
                },
                TemplateParameter {
                    name: "label".into(),
                    pattern: None,
                    max_length: 20,
                    required: false,
                    default: Some("run".into()),
                },
            ],
        }
    }

    #[test]
    fn values_are_checked_against_the_declaration() {
        let t = template();
        t.validate().unwrap();
        let given = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(
            t.values(&given(&[("epsg", "3413")])).unwrap(),
            [("epsg".into(), "3413".into()), ("label".into(), "run".into())]
        );
        for (pairs, says) in [
            (vec![], "'parameters.epsg' is required"),
            (vec![("epsg", "34a3")], "does not match"),
            (vec![("epsg", "3413"), ("label", "{{workflow.name}}")], "may not contain '{{'"),
            (vec![("epsg", "3413"), ("label", "a-label-that-is-far-too-long")], "longer than 20"),
            (vec![("epsg", "3413"), ("image", "evil:latest")], "declares no parameter 'image'"),
            (vec![("epsg", "123456")], "longer than 5"),
        ] {
            let err = t.values(&given(&pairs)).unwrap_err().to_string();
            assert!(err.contains(says), "{pairs:?}: {err}");
            assert!(!err.contains("34a3") && !err.contains("evil"), "{err}");
        }
    }

    #[test]
    fn unusable_declarations_are_refused() {
        for change in [
            |t: &mut RegisteredTemplate| t.name = "Has Space".into(),
            |t: &mut RegisteredTemplate| t.workflow_template = "../x".into(),
            |t: &mut RegisteredTemplate| t.parameters[0].pattern = Some("([".into()),
            |t: &mut RegisteredTemplate| t.parameters[1].default = Some("x".repeat(30)),
            |t: &mut RegisteredTemplate| t.parameters[1].name = "epsg".into(),
        ] {
            let mut t = template();
            change(&mut t);
            assert!(t.validate().is_err(), "{t:?}");
        }
    }
}
