//! User YAML in (a recipe's `meta.yml`): one document, parse budgets against hostile input, and
//! errors that give the field path, line and column but never the submitted text, as
//! [`portico_core::input`] does for JSON. serde-saphyr's messages can quote values (and render source
//! snippets), so each message is rebuilt from the error's structured parts.

use serde::de::DeserializeOwned;
use serde_saphyr::Error as Yaml;

use portico_core::input::{is_field_name, shown_key};

/// Why a YAML document was refused; the message is safe to return and to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// The field path (`workflow.parallel.enabled`, `input.params[0]`); empty for the document.
    pub path: String,
    /// 1-based line and column, when the parser knows them.
    pub line: Option<u64>,
    pub column: Option<u64>,
    /// What was expected, in words that hold no submitted text.
    pub what: String,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = match (self.line, self.column) {
            (Some(line), Some(column)) => format!("line {line}, column {column}"),
            _ => String::new(),
        };
        match (self.path.is_empty(), at.is_empty()) {
            (false, false) => write!(f, "field '{}' ({at}): {}", self.path, self.what),
            (false, true) => write!(f, "field '{}': {}", self.path, self.what),
            (true, false) => write!(f, "{at}: {}", self.what),
            (true, true) => f.write_str(&self.what),
        }
    }
}

impl std::error::Error for YamlError {}

/// Nesting far beyond any recipe's, and an event count a 64 KB file cannot need: alias
/// expansion ("billion laughs") and deep nesting stop early.
const MAX_DEPTH: usize = 32;
const MAX_EVENTS: usize = 100_000;
const MAX_ALIASES: usize = 100;

/// `text`, one YAML document, as `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    options.reject_unsupported_tags = true;
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_events = MAX_EVENTS;
    budget.max_aliases = MAX_ALIASES;
    options.budget = Some(budget);
    let mut track = serde_path_to_error::Track::new();
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        T::deserialize(serde_path_to_error::Deserializer::new(de, &mut track))
    });
    result.map_err(|e| {
        let e = original(&e);
        let path = safe_path(&track.path(), e);
        let location = e.location().filter(|l| l.line() > 0);
        YamlError {
            path,
            line: location.map(|l| l.line()),
            column: location.map(|l| l.column()),
            what: safe_message(e),
        }
    })
}

/// The field path, from names the types declare: a key that is not an identifier shows as
/// `?`, and an unknown field's own key is dropped (the message names it).
fn safe_path(path: &serde_path_to_error::Path, e: &Yaml) -> String {
    use serde_path_to_error::Segment;
    let mut segments: Vec<&Segment> = path.iter().collect();
    if matches!(e, Yaml::SerdeUnknownField { .. }) && matches!(segments.last(), Some(Segment::Map { .. })) {
        segments.pop();
    }
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(shown_key(key));
            }
            Segment::Unknown => break,
        }
    }
    out
}

/// The error itself, without the snippet or alias wrappers.
fn original(mut e: &Yaml) -> &Yaml {
    loop {
        match e.without_snippet() {
            Yaml::AliasError { error, .. } => e = error,
            inner => return inner,
        }
    }
}

/// The message, rebuilt from parts that hold no submitted text: serde's wording goes through
/// [`portico_core::input::shape_message`] (which drops quoted values); parser messages, which may
/// echo a tag or a token, become a generic one beside the line and column.
fn safe_message(e: &Yaml) -> String {
    let serde_message = match e {
        Yaml::SerdeInvalidType { unexpected, expected, .. } => {
            format!("invalid type: {unexpected}, expected {expected}")
        }
        Yaml::SerdeInvalidValue { expected, .. } => format!("invalid value: -, expected {expected}"),
        Yaml::SerdeUnknownVariant { expected, .. } => format!("unknown variant `-`, expected {}", one_of(expected)),
        Yaml::SerdeUnknownField { field, expected, .. } => {
            format!("unknown field `{}`, expected {}", shown_key(field), one_of(expected))
        }
        Yaml::SerdeMissingField { field, .. } => format!("missing field `{field}`"),
        Yaml::SerdeInvalidLength { len, expected, .. } => format!("invalid length {len}, expected {expected}"),
        Yaml::Message { msg, .. } => msg.clone(),
        Yaml::DuplicateMappingKey { key: Some(key), .. } if is_field_name(key) => {
            return format!("duplicate key `{key}`");
        }
        Yaml::DuplicateMappingKey { .. } => return "duplicate key".into(),
        Yaml::Budget { .. } => return "exceeds the parser's limits (nesting, size or aliases)".into(),
        Yaml::Eof { .. } => return "unexpected end of the document".into(),
        Yaml::MultipleDocuments { .. } => return "must be a single YAML document".into(),
        Yaml::InvalidUtf8Input => return "is not UTF-8".into(),
        Yaml::InvalidScalar { ty, .. } => return format!("expected {}", scalar(ty)),
        Yaml::NullIntoString { .. } => return "expected a string, found null".into(),
        Yaml::Unexpected { expected, .. } => return format!("expected {}", node(expected)),
        _ => return "is not valid YAML".into(),
    };
    yaml_terms(&portico_core::input::shape_message(&serde_message))
}

/// serde-saphyr's scalar type names (Rust's) in words.
fn scalar(ty: &str) -> String {
    match ty {
        "boolean" => "a boolean (true or false)".into(),
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer in range".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer in range".into(),
        "floating point" | "f32" | "f64" => "a number".into(),
        other => format!("a valid {other}"),
    }
}

/// serde-saphyr's parser-event names in words.
fn node(expected: &str) -> &str {
    match expected {
        "mapping start" => "a mapping",
        "sequence start" => "a list",
        "string scalar" => "a string",
        other => other,
    }
}

/// serde's wording for a list of names (its private `OneOf`).
fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => "nothing".into(),
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        all => format!("one of {}", all.join(", ")),
    }
}

/// JSON's words (from [`portico_core::input`]) in YAML's.
fn yaml_terms(message: &str) -> String {
    message.replace("an object", "a mapping").replace("an array", "a list")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        #[serde(default)]
        count: u32,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        flag: bool,
    }

    fn refuse(text: &str) -> String {
        from_str::<Doc>(text).unwrap_err().to_string()
    }

    #[test]
    fn messages_locate_the_problem_and_drop_the_value() {
        let cases = [
            ("name: a\ncount: s3cr3t-value\n", "field 'count' (line 2, column 8): expected a non-negative integer"),
            ("name: a\ncount: -1\n", "field 'count' (line 2, column 8): expected a non-negative integer"),
            ("name: a\ninner: {flag: s3cr3t-value}\n", "expected a boolean"),
            ("name: a\ninner: {flag: s3cr3t-value}\n", "field 'inner.flag'"),
            ("name: a\ninner: [s3cr3t-value]\n", "field 'inner'"),
            ("name: [s3cr3t-value]\n", "field 'name'"),
            ("name: a\ns3cr3t-value: 1\n", "unknown field `s3cr3t-value`"),
            ("name: a\n\"s3cr3t value!\": 1\n", "line 2, column 1: unknown field `?`"),
            ("name: a\ninner: {\"s3cr3t value!\": 1}\n", "field 'inner' (line 2, column 9): unknown field `?`"),
            ("name: a\ncount: [\n  s3cr3t-value\n", "line"),
            ("name: !s3cr3t-value x\n", "line 1"),
            ("name: a\nname: s3cr3t-value\n", "duplicate key `name`"),
            ("- s3cr3t-value\n", "line 1, column 1: expected a mapping"),
            ("name: a\nname: s3cr3t-value\n", "line 2, column 1: duplicate key `name`"),
        ];
        for (text, want) in cases {
            let message = refuse(text);
            assert!(message.contains(want), "{text:?}: {message}");
            if !want.contains("s3cr3t") {
                assert!(!message.contains("s3cr3t"), "{text:?}: {message}");
            }
        }
    }

    #[test]
    fn documents_are_single_and_bounded() {
        assert!(refuse("name: a\n---\nname: b\n").contains("single YAML document"));
        let laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
                      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
                      e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n";
        assert!(from_str::<serde_json::Value>(laughs).is_err());
        let deep = format!("{}x{}", "[".repeat(200), "]".repeat(200));
        assert!(from_str::<serde_json::Value>(&deep).is_err());
    }
}
