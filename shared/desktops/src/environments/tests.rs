//! What an environment may be: each refusal names its field.

use serde_json::{Value, json};

use super::*;

fn desktop() -> Value {
    json!({"title": "Analysis desktop", "kind": "kubernetes", "image": "registry.example.org:5000/facility/xfce:1.4",
           "protocol": "vnc", "port": 5901, "cpu": 2000, "memory": 4096, "storage": 10, "max_lifetime": 28800,
           "group": "beamline-1"})
}

fn link() -> Value {
    json!({"title": "Jupyter", "kind": "link", "link": "https://jupyter.example.org/", "max_lifetime": 3600})
}

fn refusal(body: Value) -> Option<String> {
    let input: EnvironmentInput = match serde_json::from_value(body) {
        Ok(input) => input,
        Err(e) => return Some(format!("shape: {e}")),
    };
    input.validate("xfce").err().map(|e| e.field().unwrap_or("?").to_owned())
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    match value {
        Value::Null => body.as_object_mut().unwrap().remove(field),
        v => body.as_object_mut().unwrap().insert(field.into(), v),
    };
    body
}

#[test]
fn a_container_desktop_and_a_link_are_environments() {
    assert_eq!(refusal(desktop()), None);
    assert_eq!(refusal(link()), None);
    let digest = format!("ghcr.io/facility/xfce@sha256:{}", "a".repeat(64));
    assert_eq!(refusal(with(desktop(), "image", json!(digest))), None);
    assert_eq!(refusal(with(desktop(), "protocol", json!("rdp"))), None);
}

#[test]
fn each_mistake_is_refused_naming_its_field() {
    let cases = [
        (with(desktop(), "title", json!(" ")), "title"),
        (with(desktop(), "image", Value::Null), "image"),
        (with(desktop(), "image", json!("Registry/UPPER")), "image"),
        (with(desktop(), "image", json!("repo:tag with space")), "image"),
        (with(desktop(), "image", json!("repo@sha256:abc")), "image"),
        (with(desktop(), "image", json!("a".repeat(256))), "image"),
        (with(desktop(), "protocol", Value::Null), "protocol"),
        (with(desktop(), "port", Value::Null), "port"),
        (with(desktop(), "port", json!(0)), "port"),
        (with(desktop(), "cpu", json!(0)), "cpu"),
        (with(desktop(), "memory", json!(262_145)), "memory"),
        (with(desktop(), "storage", json!(-1)), "storage"),
        (with(desktop(), "max_lifetime", json!(299)), "max_lifetime"),
        (with(desktop(), "max_lifetime", json!(MAX_LIFETIME + 1)), "max_lifetime"),
        (with(desktop(), "group", json!("no spaces")), "group"),
        (with(desktop(), "link", json!("https://x.example/")), "link"),
        (with(desktop(), "name", json!("other")), "name"),
        (with(link(), "link", Value::Null), "link"),
        (with(link(), "link", json!("javascript:alert(1)")), "link"),
        (with(link(), "image", json!("repo")), "image"),
        (with(link(), "port", json!(5901)), "port"),
        (with(link(), "cpu", json!(1)), "cpu"),
    ];
    for (body, field) in cases {
        assert_eq!(refusal(body.clone()).as_deref(), Some(field), "{body}");
    }
    // Shapes serde refuses: unknown fields, a kind or protocol it does not know, a port past u16.
    for body in [
        with(desktop(), "hostname", json!("10.0.0.1")),
        with(desktop(), "kind", json!("vm")),
        with(desktop(), "protocol", json!("ssh")),
        with(desktop(), "port", json!(70_000)),
    ] {
        assert!(refusal(body.clone()).is_some_and(|r| r.starts_with("shape")), "{body}");
    }
    let name = EnvironmentInput::validate(&serde_json::from_value(desktop()).unwrap(), "Not-A-Name");
    assert_eq!(name.unwrap_err().field(), Some("name"));
}
