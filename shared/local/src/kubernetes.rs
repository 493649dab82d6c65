//! Kubernetes' rules for object metadata, as its API server applies them to every object (a
//! Workflow included) before storing it: the name a DNS-1123 subdomain, label keys qualified
//! names, label values at most 63 characters of `[-_.A-Za-z0-9]` with alphanumeric ends,
//! annotation keys qualified names and all annotations within 256 KiB. Written from
//! `k8s.io/apimachinery/pkg/util/validation` (Apache-2.0) and its messages, independently of
//! what Portico derives, so that the stand-ins refuse what a real cluster refuses.

use std::sync::LazyLock;

use regex_lite::Regex;
use serde_json::Value;

/// `validation.DNS1123SubdomainMaxLength`.
const MAX_SUBDOMAIN: usize = 253;
/// `validation.LabelValueMaxLength`, also a qualified name's name part.
const MAX_LABEL: usize = 63;
/// `TotalAnnotationSizeLimitB`.
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

fn anchored(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).expect("a Kubernetes pattern")
}

static SUBDOMAIN: LazyLock<Regex> =
    LazyLock::new(|| anchored(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"));
static QUALIFIED_NAME_PART: LazyLock<Regex> = LazyLock::new(|| anchored(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"));
static LABEL_VALUE: LazyLock<Regex> = LazyLock::new(|| anchored(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"));

/// `IsDNS1123Subdomain`: what is wrong with `name`, if anything.
pub fn subdomain_problem(name: &str) -> Option<String> {
    if name.len() > MAX_SUBDOMAIN {
        return Some(format!("must be no more than {MAX_SUBDOMAIN} characters"));
    }
    (!SUBDOMAIN.is_match(name)).then(|| {
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".to_owned()
    })
}

/// `IsQualifiedName`: `[prefix/]name`, the prefix a DNS-1123 subdomain.
pub fn qualified_name_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Some("prefix part must be non-empty".into());
        }
        if let Some(problem) = subdomain_problem(prefix) {
            return Some(format!("prefix part {problem}"));
        }
    }
    if name.is_empty() {
        return Some("name part must be non-empty".into());
    }
    if name.len() > MAX_LABEL {
        return Some(format!("name part must be no more than {MAX_LABEL} characters"));
    }
    (!QUALIFIED_NAME_PART.is_match(name)).then(|| {
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".to_owned()
    })
}

/// `IsValidLabelValue`.
pub fn label_value_problem(value: &str) -> Option<String> {
    if value.len() > MAX_LABEL {
        return Some(format!("must be no more than {MAX_LABEL} characters"));
    }
    (!LABEL_VALUE.is_match(value)).then(|| {
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".to_owned()
    })
}

/// The first problem of an object's `metadata` (name, labels, annotations) in the API
/// server's words (`<Kind> "<name>" is invalid: <field>: Invalid value: "<value>": <why>`), or
/// `None` when a cluster would take it.
pub fn metadata_problem(kind: &str, metadata: &Value) -> Option<String> {
    let name = metadata["name"].as_str().unwrap_or_default();
    let invalid = |field: &str, value: &str, why: String| {
        format!("{kind} \"{name}\" is invalid: {field}: Invalid value: \"{value}\": {why}")
    };
    if let Some(why) = subdomain_problem(name) {
        return Some(invalid("metadata.name", name, why));
    }
    let strings = |field: &str| -> Vec<(String, Value)> {
        metadata[field].as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
    };
    for (key, value) in strings("labels") {
        if let Some(why) = qualified_name_problem(&key) {
            return Some(invalid("metadata.labels", &key, why));
        }
        let Some(value) = value.as_str() else {
            return Some(invalid(&format!("metadata.labels[{key}]"), &value.to_string(), "must be a string".into()));
        };
        if let Some(why) = label_value_problem(value) {
            return Some(invalid("metadata.labels", value, why));
        }
    }
    let mut size = 0;
    for (key, value) in strings("annotations") {
        if let Some(why) = qualified_name_problem(&key) {
            return Some(invalid("metadata.annotations", &key, why));
        }
        size += key.len() + value.as_str().map_or(0, str::len);
    }
    (size > MAX_ANNOTATIONS_BYTES).then(|| {
        format!("{kind} \"{name}\" is invalid: metadata.annotations: Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_labels_and_annotations_follow_kubernetes_rules() {
        assert_eq!(subdomain_problem("portico-0a1b.x"), None);
        for bad in ["Portico", "-a", "a-", "a..b", "a_b", ""] {
            assert!(subdomain_problem(bad).is_some(), "{bad}");
        }
        assert!(subdomain_problem(&"a".repeat(254)).is_some());
        assert_eq!(qualified_name_problem("portico.dev/recipe"), None);
        assert_eq!(qualified_name_problem("app"), None);
        for bad in ["/x", "Portico.dev/x", "portico.dev/", "a/b/c", "x-"] {
            assert!(qualified_name_problem(bad).is_some(), "{bad}");
        }
        assert_eq!(label_value_problem(""), None);
        assert_eq!(label_value_problem("seal-tags_2.1"), None);
        for bad in ["seal-tags.", ".x", "a b", "a{b}"] {
            assert!(label_value_problem(bad).is_some(), "{bad}");
        }
        assert_eq!(label_value_problem(&"a".repeat(63)), None);
        assert!(label_value_problem(&"a".repeat(64)).is_some());
        let refused =
            metadata_problem("Workflow.argoproj.io", &json!({"name": "w", "labels": {"portico.dev/recipe": "x."}}));
        assert_eq!(
            refused.unwrap(),
            "Workflow.argoproj.io \"w\" is invalid: metadata.labels: Invalid value: \"x.\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        );
        let big = "x".repeat(MAX_ANNOTATIONS_BYTES);
        assert!(metadata_problem("Workflow", &json!({"name": "w", "annotations": {"a": big}})).is_some());
        assert_eq!(
            metadata_problem("Workflow", &json!({"name": "w", "labels": {"a": "b"}, "annotations": {"c": "{{d}}"}})),
            None
        );
    }
}
